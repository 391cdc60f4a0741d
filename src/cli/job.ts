// `dbc job submit|status|results|cancel|explain|list`
// Heavy modules (the manifest schema, the progress bar) are imported in the actions that use
// them: registering these commands must stay cheap for `dbc --help` and the read commands.
import type { Command } from 'commander'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { ApiClient } from '../api/client.js'
import { DbcError, DaemonUnavailableError } from '../errors.js'
import { printJson, table, formatDuration, formatDbc } from './output.js'
import { printable, printable as printableText } from '../jobs/task-output.js'
import { clientOf } from './context.js'
import { resolveJobId } from './job-id.js'
import { fmtPct, readTrainingManifest, submitTraining, trainingStatusLines, trainingExplain, trainingExplainLines } from './training.js'

/** The routes a job (or a node) may ask for (src/net/routes RoutingMode; not imported: the CLI loads no src/net here). */
const ROUTING_MODES = ['auto', 'direct', 'overlay'] as const
export type RoutingFlag = typeof ROUTING_MODES[number]

/** `--routing` as a mode, or BAD_ARGUMENT naming the flag, the value and the choices. */
export function parseRoutingFlag (v: unknown): RoutingFlag {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : ''
  if ((ROUTING_MODES as readonly string[]).includes(s)) return s as RoutingFlag
  throw new DbcError('BAD_ARGUMENT', `--routing must be auto, direct or overlay, not "${String(v).slice(0, 40)}"`, { hint: 'auto: a connection, else the overlay; direct: connections only (direct or relayed); overlay: sealed envelopes through relays only (no connection with providers)' })
}

/** Failed tasks `dbc job explain` prints (the rest are counted; --json lists them all). */
export const EXPLAIN_FAILURES = 20

interface JobStatus { jobId: string, name: string, status: string, tasks: number, done: number, failed: number, running: number, ahead?: number, queued: number, billedCopies: number, createdAt: number, updatedAt: number, summary?: Record<string, any> }

export function registerJobCommands (program: Command): void {
  const job = program.command('job').description('submit grid and training jobs; follow, explain, cancel and settle them')

  job.command('submit')
    .description('submit a job manifest (YAML or JSON; `type: training` for a training job) and follow its progress')
    .argument('<file>', 'the manifest')
    .option('--detach', 'return as soon as the job is accepted')
    .option('--yes', 'allow the job\'s escrow to be topped up as it runs (needed to pay past what was first locked: the predicted cost when the manifest states no budget.total)')
    .option('--routing <mode>', 'how the job reaches providers, overriding the manifest\'s routing: auto (a connection, else the overlay), direct (connections only), overlay (sealed envelopes through relays only)')
    .option('--json', 'print JSON (the job id, or the final status)')
    .action(async (file: string, opts, cmd: Command) => {
      // checked before anything is read or sent
      const routing = opts.routing !== undefined ? parseRoutingFlag(opts.routing) : undefined
      const training = await readTrainingManifest(file)
      if (training !== undefined) {
        // the job's own routing (its spec's): between its coordinator and members only
        if (routing !== undefined) training.spec = { ...(training.spec as object), routing }
        await submitTraining(await clientOf(cmd), training, opts)
        return
      }
      const { loadManifestFile } = await import('../jobs/manifest-file.js')
      const { assertPreflight } = await import('../jobs/preflight.js')
      // everything is checked here, before anything ships: the files named, the module, its entry
      const { manifest, baseDir, path } = await loadManifestFile(file, { checkCode: false })
      if (routing !== undefined) manifest.routing = routing
      await assertPreflight(manifest, baseDir, path)
      const client = await clientOf(cmd)
      const { jobId } = await client.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir, allowTopUp: opts.yes === true })
      if (opts.json !== true && (manifest as { budget?: { total?: number } }).budget?.total === undefined && opts.yes !== true) {
        process.stderr.write('note: the manifest states no budget.total: the escrow locked is the predicted cost; the job stops when it is spent (pass --yes to allow top-ups)\n')
      }
      if (opts.detach === true) {
        if (opts.json === true) return printJson({ jobId })
        process.stdout.write(`${jobId}\nlook at it with: dbc job status ${jobId} (or follow each task: dbc job logs ${jobId} --follow)\n`)
        return
      }
      if (opts.json !== true) process.stderr.write(`job ${jobId} submitted\n`)
      const final = await follow(client, jobId, opts.json !== true)
      if (opts.json === true) printJson(final)
      else printSummary(final)
      if (final.status !== 'finished') process.exitCode = 1
    })

  job.command('status')
    .description('show a job\'s state and counts')
    .argument('<job>', 'job id, or its first 16 digits as `dbc job list` prints them')
    .option('--json', 'print JSON')
    .action(async (id: string, opts, cmd: Command) => {
      const client = await clientOf(cmd)
      id = await resolveJobId(client, id)
      const s = await client.call<JobStatus>('GET', `/v1/jobs/${encodeURIComponent(id)}`).catch(async (err) => {
        if (!isNotFound(err)) throw err
        const t = await client.call<Record<string, any>>('GET', `/v1/training/${encodeURIComponent(id)}`).catch(() => { throw err })
        if (opts.json === true) { printJson(t); return undefined }
        process.stdout.write(trainingStatusLines(t).join('\n') + '\n')
        return undefined
      })
      if (s === undefined) return
      if (opts.json === true) return printJson(s)
      printSummary(s)
    })

  job.command('list')
    .description('list this node\'s jobs (grid and training)')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const client = await clientOf(cmd)
      const { jobs } = await client.call<{ jobs: JobStatus[] }>('GET', '/v1/jobs')
      // a node without the training subsystem answers 404: it has no training jobs
      const training = (await client.call<{ jobs: Array<Record<string, any>> }>('GET', '/v1/training').catch(() => ({ jobs: [] }))).jobs
      if (opts.json === true) return printJson({ jobs: [...jobs.map(j => ({ kind: 'grid', ...j })), ...training.map(t => ({ kind: 'training', ...t }))] })
      if (jobs.length === 0 && training.length === 0) { process.stdout.write('no jobs yet (submit one with `dbc job submit FILE`)\n'); return }
      // a running job has no summary yet: its PAID is what its payer committed so far (was "-", and a
      // cancelled job's "0 DBC" beside it; review s13 L8)
      const soFar = await Promise.all(jobs.map(async j => j.status !== 'running' || j.summary?.payment !== undefined
        ? undefined
        : await client.call<{ payment?: { committed?: unknown } }>('GET', `/v1/jobs/${encodeURIComponent(j.jobId)}/payments`).then(p => p.payment?.committed, () => undefined)))
      const paid = (j: JobStatus, i: number): string => {
        const c = soFar[i]
        if (j.summary?.payment !== undefined || typeof c !== 'string' || !/^\d{1,60}$/.test(c)) return formatDbc(j.summary?.payment?.paid)
        return `${formatDbc(BigInt(c))} so far`
      }
      const rows = [
        ...jobs.map((j, i) => [j.jobId.slice(0, 16), 'grid', j.name, j.status, `${j.done}/${j.tasks}`, String(j.failed), paid(j, i), formatDuration(Date.now() - j.createdAt)]),
        ...training.map(t => [String(t.jobId).slice(0, 16), 'training', String(t.name ?? 'training'), String(t.status), `${Number(t.round) + 1}/${String(t.rounds)} rounds`, '-', formatDbc(t.payment?.paid), typeof t.createdAt === 'number' ? formatDuration(Date.now() - t.createdAt) : '-'])
      ]
      process.stdout.write(table(['JOB', 'KIND', 'NAME', 'STATUS', 'DONE', 'FAILED', 'PAID', 'AGE'], rows))
    })

  job.command('top-up')
    .description('lock more escrow for a job; past its budget.total (or with none) only with --yes')
    .argument('<job>', 'job id, or its first 16 digits as `dbc job list` prints them')
    .argument('<amount>', 'DBC to add')
    .option('--yes', 'confirm a top-up past the job\'s stated budget')
    .option('--json', 'print JSON')
    .action(async (id: string, amount: string, opts, cmd: Command) => {
      const client = await clientOf(cmd)
      id = await resolveJobId(client, id)
      const r = await client.call<{ added: string, deposited: string }>('POST', `/v1/jobs/${encodeURIComponent(id)}/top-up`, { amount, allowTopUp: opts.yes === true }, { timeoutMs: 120_000 })
      if (opts.json === true) return printJson(r)
      process.stdout.write(`added ${formatDbc(r.added)}: job ${id} now holds ${formatDbc(r.deposited)} in escrow\n`)
    })

  job.command('results')
    .description('fetch a job\'s accepted results (owner only)')
    .argument('<job>', 'job id, or its first 16 digits as `dbc job list` prints them')
    .option('--out <dir>', 'write each result to DIR/<index>.out instead of printing')
    .option('--decode <how>', 'print outputs as text, f64 (little-endian float64 values) or hex; default: text when printable, else f64 when a multiple of 8 bytes', 'auto')
    .option('--json', 'print JSON (outputs base64)')
    .action(async (id: string, opts, cmd: Command) => {
      const client = await clientOf(cmd)
      id = await resolveJobId(client, id)
      const r = await client.call<{ results: Array<{ index: number, hash: string, output: string }> }>('GET', `/v1/jobs/${encodeURIComponent(id)}/results`).catch(async (err) => {
        if (!isNotFound(err)) throw err
        // a training job: the result is the final model
        const t = await client.call<{ model: string, accuracy: number, members: string[], rounds: number, receipts: number }>('GET', `/v1/training/${encodeURIComponent(id)}/results`).catch((e2) => { throw isNotFound(e2) ? err : e2 })
        if (opts.json === true) { printJson(t); return undefined }
        const out = resolve(opts.out ?? '.', opts.out === undefined ? `model-${id.slice(0, 12)}.msgpack` : 'model.msgpack')
        if (opts.out !== undefined) mkdirSync(resolve(opts.out as string), { recursive: true })
        writeFileSync(out, Buffer.from(t.model, 'base64'))
        process.stdout.write(`model (dbc-model-v2, ${Buffer.from(t.model, 'base64').length} bytes) written to ${out}; test accuracy ${fmtPct(t.accuracy)} after ${t.rounds} rounds on ${t.members.length} peers, ${t.receipts} receipts\n`)
        return undefined
      })
      if (r === undefined) return
      if (opts.json === true) return printJson(r)
      if (opts.out !== undefined) {
        const dir = resolve(opts.out as string)
        mkdirSync(dir, { recursive: true })
        for (const x of r.results) writeFileSync(join(dir, `${x.index}.out`), Buffer.from(x.output, 'base64'))
        process.stdout.write(`wrote ${r.results.length} results to ${dir}\n`)
        return await noteMissingResults(client, id, r.results.length)
      }
      const how = String(opts.decode)
      if (!['auto', 'text', 'f64', 'hex'].includes(how)) throw new DbcError('BAD_ARGUMENT', `--decode must be text, f64 or hex, not "${how}"`)
      for (const x of r.results) {
        const buf = Buffer.from(x.output, 'base64')
        const text = buf.toString('utf8')
        const printable = /^[\x09\x0a\x0d\x20-\x7e]*$/.test(text)
        const f64 = (): string => Array.from({ length: buf.length / 8 }, (_, i) => String(buf.readDoubleLE(i * 8))).join(' ')
        let shown: string
        if (how === 'text' || (how === 'auto' && printable)) shown = printableText(text).trim()
        else if (how === 'hex') shown = buf.toString('hex')
        else if (buf.length % 8 === 0 && buf.length > 0 && buf.length <= 64) shown = f64()
        else shown = `<${buf.length} bytes, sha256 ${x.hash.slice(0, 16)}…> (use --out DIR to save)`
        process.stdout.write(`${x.index}\t${shown}\n`)
      }
      await noteMissingResults(client, id, r.results.length)
    })

  job.command('cancel')
    .description('cancel a running job (owner only)')
    .argument('<job>', 'job id, or its first 16 digits as `dbc job list` prints them')
    .option('--json', 'print JSON')
    .action(async (id: string, opts, cmd: Command) => {
      const client = await clientOf(cmd)
      id = await resolveJobId(client, id)
      const s = await client.call<JobStatus>('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`).catch(async (err) => {
        if (!isNotFound(err)) throw err
        // a training job: its group is told to stop, the rounds done are paid
        const t = await client.call<Record<string, any>>('POST', `/v1/training/${encodeURIComponent(id)}/cancel`).catch((e2) => { throw isNotFound(e2) ? err : e2 })
        if (opts.json === true) { printJson(t); return undefined }
        process.stdout.write(`training job ${id} is ${String(t.status)} (${Number(t.round) + 1} of ${String(t.rounds)} rounds done)\n`)
        return undefined
      })
      if (s === undefined) return
      if (opts.json === true) return printJson(s)
      process.stdout.write(`job ${id} is ${s.status}\n`)
    })

  job.command('explain')
    .description('why the job (or one task) runs where it runs, or why it is not running')
    .argument('<job>', 'job id, or its first 16 digits as `dbc job list` prints them')
    .option('--task <index>', 'explain one task', (v) => Number(v))
    .option('--json', 'print JSON')
    .action(async (id: string, opts, cmd: Command) => {
      if (opts.task !== undefined && (!Number.isInteger(opts.task) || opts.task < 0)) throw new DbcError('BAD_ARGUMENT', `--task must be a task index (a whole number >= 0), got ${String(opts.task)}`)
      const q = opts.task !== undefined ? `?task=${String(opts.task)}` : ''
      const client = await clientOf(cmd)
      id = await resolveJobId(client, id)
      const e: Record<string, any> = await client.call<Record<string, any>>('GET', `/v1/jobs/${encodeURIComponent(id)}/explain${q}`).catch(async (err) => {
        if (!isNotFound(err)) throw err
        // a training job: its routing and how this node reaches each member
        const t = await client.call<Record<string, any>>('GET', `/v1/training/${encodeURIComponent(id)}`).catch(() => { throw err })
        return trainingExplain(t)
      })
      if (opts.json === true) return printJson(e)
      if (e.training === true) {
        // its group: members by rank with their routes, drops, refusals (it printed only the routes)
        const { describeRoute } = await import('../net/routes/explain.js')
        process.stdout.write(trainingExplainLines(e, describeRoute).join('\n') + '\n')
        return
      }
      process.stdout.write(`job ${String(e.jobId)}: ${String(e.status)}\n`)
      // --task: the job's line and the task's, not the whole job's placement and failures before them
      const p = e.task == null ? e.placement : undefined
      if (p != null) process.stdout.write(placementLines(p))
      // a job that lost its providers can fail thousands of tasks for one reason: the first few, then a count
      const failures = (e.task == null ? e.failures ?? [] : []) as Array<{ index: number, reason: string }>
      if (failures.length > 0) {
        process.stdout.write(`failures:\n${failures.slice(0, EXPLAIN_FAILURES).map(f => `  task ${f.index}: ${printable(String(f.reason))}`).join('\n')}\n`)
        if (failures.length > EXPLAIN_FAILURES) process.stdout.write(`  ... and ${failures.length - EXPLAIN_FAILURES} more failed tasks (\`dbc job explain ${id} --json\` lists them all, \`--task N\` explains one)\n`)
      }
      // loaded only here: read commands load nothing from src/net (test/unit/cli/lazy-imports.test.ts)
      const { describeRoute } = await import('../net/routes/explain.js')
      if (e.task == null && e.routes != null && Object.keys(e.routes).length > 0) process.stdout.write(`routes:\n${Object.entries(e.routes as Record<string, { kind: string, relay?: string, relays?: string[], facts: string }>).map(([p, r]) => `  ${p}: ${printable(describeRoute(r))} (${printable(String(r.facts))})`).join('\n')}\n`)
      if (e.task != null) process.stdout.write(taskLines(e.task, describeRoute))
    })
}

/**
 * Results hold accepted tasks only: a failed job printed nothing at all (exit 0), a partly failed
 * one a shorter list, either read as the whole answer. Says how many are missing and why (stderr).
 */
async function noteMissingResults (client: ApiClient, id: string, got: number): Promise<void> {
  const s = await client.call<JobStatus>('GET', `/v1/jobs/${encodeURIComponent(id)}`).catch(() => undefined)
  if (s === undefined || !(got < s.tasks)) return
  const why = s.failed > 0 ? `, ${s.failed} failed: \`dbc job explain ${id}\` says why` : ''
  process.stderr.write(`note: ${got} of ${s.tasks} tasks have an accepted result (job ${printable(String(s.status))}${why})\n`)
}

async function follow (client: ApiClient, jobId: string, bar: boolean): Promise<JobStatus> {
  const cliProgress = bar && process.stderr.isTTY ? (await import('cli-progress')).default : undefined
  const progress = cliProgress !== undefined
    ? new cliProgress.SingleBar({ format: ' {bar} {percentage}% | {value}/{total} tasks | running {running} | retries {retries} | failed {failed}{note}', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined
  let started = false
  let lastLine = 0
  let lastWaiting = ''
  try {
    for await (const ev of client.stream<Record<string, any>>('GET', `/v1/jobs/${jobId}/events`)) {
      if (ev.type === 'end') {
        progress?.stop()
        return ev.status as JobStatus
      }
      // before the runner's first report the event carries counts only: running and retries unknown
      const p = ev.progress ?? { total: ev.tasks, done: ev.done, failed: ev.failed }
      // why nothing runs (busy providers; a search that fails the tasks unless a provider answers)
      const waiting = typeof ev.waiting === 'string' ? printable(ev.waiting) : ''
      if (progress !== undefined) {
        const note = waiting === '' ? '' : ` | ${waiting.length > 160 ? `${waiting.slice(0, 157)}...` : waiting}`
        if (!started) { progress.start(p.total, p.done, { running: p.running ?? '-', retries: p.retries ?? '-', failed: p.failed, note }); started = true }
        progress.update(p.done, { running: p.running ?? '-', retries: p.retries ?? '-', failed: p.failed, note })
      } else if (bar && waiting !== '' && waiting.replace(/\d+ s\b/g, '') !== lastWaiting) {
        // a new reason, printed once (not again for its countdown)
        lastWaiting = waiting.replace(/\d+ s\b/g, '')
        process.stderr.write(`${waiting}\n`)
      } else if (bar && Date.now() - lastLine > 2000) {
        lastLine = Date.now()
        // "0 running, 0 retries" while copies ran was the fallback's made-up zeros (user walk s14)
        const busy = p.running === undefined ? '' : `, ${String(p.running)} running, ${String(p.retries)} retries`
        process.stderr.write(`progress: ${String(p.done)}/${String(p.total)} tasks done${busy}, ${String(p.failed)} failed\n`)
      }
    }
  } catch (err) {
    progress?.stop()
    // the node stopped while we followed: the job is not lost; say how to look at it again
    if (err instanceof DbcError && err.code === 'DAEMON_LOST') throw new DaemonUnavailableError('DAEMON_LOST', `${err.message}; job ${jobId} is kept in the node's store`, { hint: `it resumes when the node starts again (\`dbc node start\`); then \`dbc job status ${jobId}\`` })
    throw err
  }
  progress?.stop()
  // the stream ended without its last event (the daemon restarted, a proxy cut it): look again
  const s = await client.call<JobStatus>('GET', `/v1/jobs/${jobId}`)
  if (s.status === 'running') return await follow(client, jobId, bar)
  return s
}

function printSummary (s: JobStatus): void {
  const sum = s.summary ?? {}
  const rows: string[][] = [
    ['job', s.jobId], ['name', s.name], ['status', s.status],
    ['tasks', `${s.done}/${s.tasks} done, ${s.failed} failed${s.running > 0 ? `, ${s.running} running` : ''}${(s.ahead ?? 0) > 0 ? ` (${String(s.ahead)} more sent ahead, waiting for a slot)` : ''}`]
  ]
  if (sum.providersUsed !== undefined) rows.push(['peers used', String(sum.providersUsed)])
  // tiny tasks leave several to a frame to providers that run TaskBundles (one slot runs them in turn)
  if (sum.bundles !== undefined && sum.bundles.frames > 0) rows.push(['bundled', `${String(sum.bundles.copies)} copies in ${String(sum.bundles.frames)} frames (${(sum.bundles.copies / sum.bundles.frames).toFixed(1)} per frame)`])
  if (sum.retries !== undefined) rows.push(['retries', `${String(sum.retries)} (speculative ${String(sum.speculative ?? 0)}, wrong copies ${String(sum.wrongCopies ?? 0)}, leases lost ${String(sum.leasesLost ?? 0)})`])
  if (sum.elapsedMs !== undefined) rows.push(['time', `${(sum.elapsedMs / 1000).toFixed(1)} s`])
  if (sum.predictedCost !== undefined) rows.push(['cost (predicted)', formatDbc(sum.predictedCost)])
  if (sum.meteredSpent !== undefined) {
    // receipts come back for failed and timed-out copies too, which are not paid: a failed job read
    // "billed 0.000057 DBC, paid 0 DBC, billed copies 0" with no word why (user walk s14)
    const paid = Number(sum.payment?.paid)
    const unpaid = s.status !== 'running' && Number.isFinite(paid) && paid < sum.meteredSpent * 0.999 ? ' (receipts of every copy that came back, failed ones too; only accepted copies are paid)' : ''
    rows.push(['billed (receipts)', `${formatDbc(sum.meteredSpent)}${unpaid}`])
  }
  if (sum.payment !== undefined) rows.push(['paid (signed)', `${formatDbc(sum.payment.paid)}${sum.payment.refused !== '0' ? `, refused ${formatDbc(sum.payment.refused)} (see dbc job settle)` : ''}`])
  rows.push(['billed copies', String(s.billedCopies)])
  // why tasks wait or failed to place, from the providers' own refusal codes (e.g. BUSY: 12)
  const waiting = (s as { waiting?: unknown }).waiting ?? sum.waiting
  // the reason starts "waiting: ..." (explain's wording): the row is named so already
  if (typeof waiting === 'string' && waiting !== '') rows.push(['waiting', waiting.replace(/^waiting:\s*/, '')])
  const refusals = refusalSummary((s as { refusals?: unknown }).refusals ?? sum.refusals) // top level while live
  if (refusals !== '') rows.push(['refusals', refusals])
  // the summary counts; the reasons are one command away
  if (s.status === 'failed' && s.failed > 0) rows.push(['why', `${commonReason(sum.failures)}dbc job explain ${s.jobId} (each failed task's reason)`])
  process.stdout.write(table(['', ''], rows).split('\n').slice(1).join('\n'))
}

/**
 * The one reason every failure the summary lists shares (its first 100), as "REASON; ": a job that
 * failed for one cause (a node alone: "no provider answered the lease request") said so only one
 * command away. Mixed reasons: nothing (explain lists them). The reason may carry provider text.
 */
function commonReason (failures: unknown): string {
  if (!Array.isArray(failures) || failures.length === 0) return ''
  const reasons = new Set(failures.map(f => String((f as { reason?: unknown })?.reason ?? '')))
  if (reasons.size !== 1) return ''
  const r = printable([...reasons][0]).replace(/^not placed: /, '')
  return r === '' ? '' : `${r.length > 200 ? `${r.slice(0, 200)}...` : r}; `
}

/** The first placement of a job (src/core/scheduler/explain.ts PlacementSummary) as lines for people. */
export function placementLines (p: Record<string, any>): string {
  const n = (v: unknown): string => typeof v === 'number' && Number.isFinite(v) ? String(v) : '-'
  const counts = (v: unknown): string => Object.entries(v !== null && typeof v === 'object' ? v as Record<string, unknown> : {})
    .filter(([, c]) => typeof c === 'number' && c > 0).map(([k, c]) => `${printable(k)} ${String(c)}`).join(', ')
  const lines = [`placement: ${n(p.placedTasks)} of ${n(p.tasks)} tasks placed on ${n(p.offersUsed)} provider(s); ${n(p.usableOffers)} of ${n(p.offers)} offers usable`]
  // a job of tiny tasks is predicted to take well under a second: "makespan 0s" said nothing
  const span = (ms: unknown): string => typeof ms !== 'number' || !Number.isFinite(ms) ? '-' : ms > 0 && ms < 1000 ? `${Math.max(1, Math.round(ms))} ms` : formatDuration(ms)
  // the placement model predicts the providers' side (their work, queues and transfers); a job of
  // tiny tasks takes longer, set by this node's own work per copy (a 200-task job predicted at
  // 289 ms took 3-6 s in long/netns): say what the figure covers
  if (typeof p.predictedCost === 'number') lines.push(`  predicted cost ${formatDbc(p.predictedCost)}, providers' makespan ${span(p.predictedMakespanMs)} (their work and transfers, not this node's dispatch of each copy)`)
  const rejected = counts(p.rejectedOffers)
  if (rejected !== '') lines.push(`  offers rejected: ${rejected}`)
  const unplaced = counts(p.unplaced)
  if (unplaced !== '') lines.push(`  tasks not placed: ${unplaced}`)
  const c = p.candidates
  if (c !== null && typeof c === 'object' && typeof c.asked === 'number') {
    // candidates that never answered (a NATed provider whose streams all failed) were only in DEBUG=dbc:task
    const ex = Array.isArray(c.examples) ? c.examples as Array<Record<string, unknown>> : []
    const named = ex.map(e => `${printable(String(e.provider))}${Number(e.times) > 1 ? ` x${String(e.times)}` : ''} (${printable(String(e.reason))})`).join('; ')
    const noAnswer = n(c.noAnswer)
    const others = Number(c.noAnswer) > ex.reduce((t, e) => t + Number(e.times), 0) ? '; and others' : ''
    lines.push(`  offer requests: ${n(c.asked)} sent, ${noAnswer} not answered${named !== '' ? `: ${named}${others}` : ''}`)
  }
  return lines.join('\n') + '\n'
}

/** One task's explanation (src/jobs/runner-state.ts explain, routes added by the API) as lines for people. */
export function taskLines (t: Record<string, any>, routeText: (r: any) => string): string {
  const text = (v: unknown): string => printable(String(v))
  const lines = [`task ${text(t.index)}: ${text(t.status)}${typeof t.acceptedHash === 'string' ? ` (accepted output sha256 ${text(t.acceptedHash.slice(0, 16))}...)` : ''}`]
  if (typeof t.waiting === 'string') lines.push(`  ${text(t.waiting)}`)
  if (typeof t.placement?.why === 'string') lines.push(`  placement: ${text(t.placement.why)}`)
  for (const c of Array.isArray(t.placement?.copies) ? t.placement.copies : []) lines.push(`    copy ${text(c.copy)} on ${text(c.provider)}: ${text(c.why)}`)
  const copies = Array.isArray(t.copies) ? t.copies : []
  if (copies.length === 0) lines.push('  no copy sent yet')
  for (const c of copies) {
    const ms = typeof c.ms === 'number' ? `, ${Math.round(c.ms)} ms` : ''
    const hash = typeof c.hash === 'string' && c.hash !== '' ? `, output ${text(c.hash.slice(0, 16))}...` : ''
    const error = typeof c.error === 'string' && c.error !== '' ? `, error: ${text(c.error)}` : ''
    lines.push(`  copy ${text(c.attempt)} (${text(c.reason)}) on ${text(c.provider)}: ${text(c.outcome)}${ms}${hash}${error}`)
    if (c.route != null) lines.push(`    route: ${text(routeText(c.route))} (${text(c.route.facts)})`)
  }
  return lines.join('\n') + '\n'
}

/** `{ BUSY: 12, PRICE: 3 }` as `BUSY x12, PRICE x3`, most frequent first. */
export function refusalSummary (refusals: unknown): string {
  if (refusals === null || typeof refusals !== 'object') return ''
  return Object.entries(refusals as Record<string, unknown>)
    .filter((e): e is [string, number] => typeof e[1] === 'number' && e[1] > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([code, n]) => `${code} x${n}`).join(', ')
}

function isNotFound (err: unknown): boolean {
  return err instanceof DbcError && /NOT_FOUND/.test(err.code)
}
