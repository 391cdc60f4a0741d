// Grid jobs: dispatch as users get it (a submitter and four provider daemons as OS processes
// over libp2p, bench/grid-e2e.ts, vs the executor alone in the same run), dispatch throughput of
// tiny tasks over 8 in-process providers (vs running the same tasks in one process), the cost of the default result checks (spot checks vs
// `verification: { mode: off }`, same run), makespan with 30% of providers killed mid-job (vs
// no churn), and placement of 10,000 tasks over 1,000 offers (vs random placement).
import { createHash } from 'node:crypto'
import { metric, type BenchModule, type Metric } from './lib.js'
import { createRng } from '../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, toHex } from '../src/core/identity/index.js'
import { placeTasks, placeRandomly, validateManifest, encodeValueInput, ReputationBook, type OfferView, type PlacementRequest, type ManifestInput } from '../src/core/scheduler/index.js'
import { FakeProvider, JobRunner, LocalTransport, JobStore, ProcessTransport, type JobSummary } from '../src/jobs/index.js'
import { openStore } from '../src/store/db.js'
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { endToEnd } from './grid-e2e.js'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const key = (n: number): { secretKey: Uint8Array, peerId: Uint8Array } => {
  const secretKey = new Uint8Array(32).fill(n)
  return { secretKey, peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)) }
}
const owner = key(1)
const compute = (input: Uint8Array): Uint8Array => createHash('sha256').update(input).digest()

function manifest (m: Partial<ManifestInput>): ReturnType<typeof validateManifest> & { ok: true } {
  const r = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 999 } }, task: { timeoutMs: 30_000, expectedMs: 1 }, ...m })
  if (!r.ok) throw new Error(JSON.stringify(r.issues))
  return r
}

let jobSeq = 0
// Rows other than the checks rows measure the dispatch machinery: one copy per task (`mode: off`).
const OFF = { mode: 'off' } as const

async function runJob (tasks: number, providers: FakeProvider[], opts: { killAtFraction?: number, kill?: number, store?: JobStore, taskMs?: number, verification?: ManifestInput['verification'] | null, reputation?: ReputationBook } = {}): Promise<{ summary: JobSummary, ms: number }> {
  const tr = new LocalTransport(providers, { sender: owner.peerId, heartbeatMs: 100 })
  let accepted = 0
  const killAt = Math.floor(tasks * (opts.killAtFraction ?? 2))
  const r = new JobRunner({
    jobId: (++jobSeq).toString(16).padStart(64, '0'),
    // verification null: no verification section at all (the default checks)
    manifest: manifest({ inputs: { range: { from: 0, to: tasks - 1 } }, task: { timeoutMs: 30_000, expectedMs: opts.taskMs ?? 1 }, ...(opts.verification === null ? {} : { verification: opts.verification ?? OFF }) }).manifest,
    holder: owner,
    transport: tr,
    code: new Uint8Array([0]),
    store: opts.store,
    reputation: opts.reputation,
    leaseTimeoutMs: 400,
    onEvent: e => {
      if (e.type === 'accepted' && ++accepted === killAt) for (const p of providers.slice(0, opts.kill ?? 0)) tr.kill(p.id)
    }
  })
  const t0 = performance.now()
  const summary = await r.run()
  const ms = performance.now() - t0
  tr.close()
  if (summary.done !== tasks) throw new Error(`job ended with ${summary.done}/${tasks} done`)
  return { summary, ms }
}

function providers (n: number, init: { delayMs?: number, slots?: number } = {}): FakeProvider[] {
  return Array.from({ length: n }, (_, i) => new FakeProvider({ secretKey: key(100 + i).secretKey, compute, slots: init.slots ?? 16, delayMs: init.delayMs }))
}

/** The end-to-end rows: a 1,000-task job of tiny wasm tasks through five daemons, against the executor alone. */
async function endToEndRows (metrics: Record<string, Metric>, notes: string[]): Promise<void> {
  const e = await endToEnd({ tasks: 1000 })
  const s = e.ms / 1000
  const tps = e.tasks / s
  metrics.e2e_daemons_tasks_per_s = metric(tps, 'tasks/s', e.executorTasksPerS, '>= 0.5x the executor alone', tps >= 0.5 * e.executorTasksPerS)
  metrics.e2e_daemons_copies_per_s = metric(e.copies / s, 'copies/s', e.executorTasksPerS)
  // against the executor alone running the same tasks in bundles of 16, as the providers run a TaskBundle (a stricter reference)
  metrics.e2e_daemons_tasks_per_s_vs_bundled_executor = metric(tps, 'tasks/s', e.executorBundledTasksPerS)
  metrics.e2e_daemons_copies_per_task = metric(e.copies / e.tasks, 'copies/task', 1)
  // what ran: copies per lease-stream frame (TaskBundle: tiny tasks to providers that run them; 1 = none, one task per frame; baseline the executor's one task per call)
  metrics.e2e_copies_per_task_frame = metric(e.copies / Math.max(1, e.bundleFrames + e.copies - e.bundledCopies), 'copies/frame', 1)
  metrics.e2e_bundled_copies_share = metric(e.copies > 0 ? e.bundledCopies / e.copies : 0, 'share of copies')
  // CPU per task (from /proc) does not move with the machine's load as the wall-clock rate does
  metrics.e2e_daemons_cpu_ms_per_task = metric(e.submitterCpuMsPerTask + e.providersCpuMsPerTask, 'CPU ms/task', e.executorCpuMsPerTask)
  metrics.e2e_submitter_cpu_ms_per_task = metric(e.submitterCpuMsPerTask, 'CPU ms/task', e.executorCpuMsPerTask)
  metrics.e2e_providers_cpu_ms_per_task = metric(e.providersCpuMsPerTask, 'CPU ms/task', e.executorCpuMsPerTask)
  metrics.e2e_submitter_main_thread_cpu_ms_per_task = metric(e.submitterMainThreadCpuMsPerTask, 'CPU ms/task', e.executorCpuMsPerTask)
  // the providers' event loops (libp2p, lease streams, payment gate, receipts), apart from their wasm workers and V8's threads
  const providersMain = e.threadCpuMsPerTask?.providers.main
  if (providersMain !== undefined) metrics.e2e_providers_main_thread_cpu_ms_per_task = metric(providersMain, 'CPU ms/task', e.executorCpuMsPerTask)
  // the same, less what the daemons burn idle for as long as the job ran (a per-second cost a loaded, slower job pays more of)
  const idleMsPerTask = e.idleCpuMsPerS * s / e.tasks
  metrics.e2e_daemons_cpu_ms_per_task_net_of_idle = metric(Math.max(0, e.submitterCpuMsPerTask + e.providersCpuMsPerTask - idleMsPerTask), 'CPU ms/task', e.executorCpuMsPerTask)
  metrics.e2e_daemons_idle_cpu_ms_per_s = metric(e.idleCpuMsPerS, 'CPU ms/s')
  notes.push(`end to end: a submitter and 4 provider daemons (\`dbc node start\`, separate OS processes, libp2p over 127.0.0.1 TCP, demo/network.ts), one job of ${e.tasks} tiny wasm tasks (square.wasm, 8-byte inputs) submitted through the control API with no verification section (the default checks), after a 200-task warm-up job; ${e.ms.toFixed(0)} ms from POST /v1/jobs to its end, ${e.copies} copies on ${e.providersUsed} providers (${e.bundledCopies} of them in ${e.bundleFrames} TaskBundle frames), ${e.billedCopies} billed (ok copies the providers counted delivered and not billed: ${e.surplusDeliveries ?? '?'}; left unsigned at the providers: ${e.unsignedAtProvidersUnits ?? '?'} units); baseline: the same tasks through the executor alone (ComputePeer in this process, ${e.executorSlots} slots busy, signed receipts), measured after the daemons stopped (the _vs_bundled_executor row: the same executor running them in bundles of 16, ComputePeer.runBundle, as a provider runs a TaskBundle); the cpu_ms rows are the daemons' CPU time during the job (user + system from /proc, the submitter and the four providers) per task, against the executor's CPU per task; ${(e.startMs / 1000).toFixed(1)} s to start the five daemons; load average (1 min) ${e.loadBefore.toFixed(1)} before the timed job, ${e.loadAfter.toFixed(1)} after; the daemons idle burn ${e.idleCpuMsPerS.toFixed(1)} CPU ms/s together (5 s before the job), which the _net_of_idle row subtracts for the job's duration${e.failedJobs.length > 0 ? `; ${e.failedJobs.length} job(s) failed before one finished and were run again: ${e.failedJobs.map(f => f.slice(0, 300)).join(' | ')}` : ''}`)
}

/** DBC_BENCH_GRID_ONLY=e2e: only the end-to-end rows; the other rows are kept from the last full run. */
function keptRows (metrics: Record<string, Metric>, notes: string[]): void {
  const file = join(fileURLToPath(new URL('.', import.meta.url)), 'results', 'grid.json')
  if (!existsSync(file)) return
  const old = JSON.parse(readFileSync(file, 'utf8')) as { date?: string, metrics?: Record<string, Metric>, notes?: string[] }
  for (const [k, m] of Object.entries(old.metrics ?? {})) if (!k.startsWith('e2e_')) metrics[k] = m
  notes.push(`rows other than e2e_* are kept from the run of ${old.date ?? '?'} (DBC_BENCH_GRID_ONLY=e2e ran the end-to-end rows only)`)
  for (const n of old.notes ?? []) if (!n.startsWith('end to end:') && !n.startsWith('rows other than')) notes.push(n)
}

export const run: BenchModule['run'] = async ({ quick }) => {
  const metrics: Record<string, Metric> = {}
  const notes: string[] = []
  // 0. Dispatch as users get it: daemons over libp2p (the headline), then the in-process rows
  await endToEndRows(metrics, notes)
  if (process.env.DBC_BENCH_GRID_ONLY === 'e2e') {
    keptRows(metrics, notes)
    return { metrics, notes }
  }

  // 1. Dispatch throughput of tiny tasks in one process (offer, lease, dispatch, signed receipt, verify hash, accept): the secondary row.
  const n = quick ? 5_000 : 20_000
  await runJob(1000, providers(8)) // warm up the JIT
  // Median of 3 runs: the machine is shared, single runs swing by 2x.
  const runs: number[] = []
  for (let k = 0; k < 3; k++) runs.push((await runJob(n, providers(8))).ms)
  runs.sort((a, b) => a - b)
  const through = { ms: runs[1] }
  const t0 = performance.now()
  for (let i = 0; i < n; i++) compute(encodeValueInput(i))
  const localMs = performance.now() - t0
  const tps = n / (through.ms / 1000)
  notes.push(`throughput runs: ${runs.map(ms => (n / (ms / 1000)).toFixed(0)).join(', ')} tasks/s`)
  metrics.dispatch_tasks_per_s = metric(tps, 'tasks/s', n / (localMs / 1000), '>= 5000 tasks/s', tps >= 5000)
  const dir = mkdtempSync(join(tmpdir(), 'dbc-bench-grid-'))
  try {
    const store = new JobStore(openStore(join(dir, 'node.db')))
    const durable = await runJob(n, providers(8), { store })
    metrics.dispatch_tasks_per_s_durable = metric(n / (durable.ms / 1000), 'tasks/s', tps, undefined, undefined)
    store.store.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
  notes.push(`throughput: ${n} tiny tasks (sha256 of the input) over 8 in-process providers with 16 slots each, verification off (one copy per task: the dispatch machinery alone); each task gets a signed usage receipt (node:crypto Ed25519) and its output hash checked; baseline runs the same function in a loop in one process; the _durable row writes every copy and result to the node store (SQLite, WAL, synchronous=FULL, batched per tick)`)

  // 1b. The default checks (a manifest with no verification section) vs `verification: { mode: off }`,
  // alternating in the same run: throughput and copies per task, with providers new to the
  // submitter (every result checked until a provider has 10 confirmed in a row) and established.
  // Tasks of 50 ms: provider capacity, not the shared CPU, sets the pace (extra copies cost capacity).
  const cn = quick ? 1_000 : 2_000
  const cMs = 50
  const cps = (): FakeProvider[] => providers(10, { slots: 4, delayMs: cMs })
  const established = new ReputationBook()
  await runJob(cn, cps(), { verification: null, reputation: established, taskMs: cMs }) // builds the records
  const offMs: number[] = []; const freshMs: number[] = []; const estMs: number[] = []
  let fresh!: JobSummary; let est!: JobSummary
  for (let k = 0; k < 5; k++) {
    offMs.push((await runJob(cn, cps(), { taskMs: cMs })).ms)
    const f = await runJob(cn, cps(), { verification: null, taskMs: cMs })
    freshMs.push(f.ms); fresh = f.summary
    const e = await runJob(cn, cps(), { verification: null, reputation: established, taskMs: cMs })
    estMs.push(e.ms); est = e.summary
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const offTps = cn / (med(offMs) / 1000)
  metrics.checks_tasks_per_s_new_providers = metric(cn / (med(freshMs) / 1000), 'tasks/s', offTps)
  metrics.checks_tasks_per_s_established = metric(cn / (med(estMs) / 1000), 'tasks/s', offTps)
  metrics.checks_copies_per_task_new_providers = metric(fresh.copies / cn, 'copies/task', 1)
  metrics.checks_copies_per_task_established = metric(est.copies / cn, 'copies/task', 1, '<= 1.15 (1 + spot-check rate 0.1)', est.copies / cn <= 1.15)
  notes.push(`default checks: ${cn} tasks of ${cMs} ms over 10 in-process providers x 4 slots (capacity-bound), a manifest with no verification section vs verification: { mode: off } (baseline), alternating, medians of 5; "new providers" = a fresh reputation book (each provider's results checked until 10 are confirmed in a row by another provider), "established" = the book of an earlier job (a 10% share checked); ${fresh.checkedTasks} / ${est.checkedTasks} tasks checked, billed copies ${fresh.billedCopies} / ${est.billedCopies}; off runs ${offMs.map(x => x.toFixed(0)).join(', ')} ms, new ${freshMs.map(x => x.toFixed(0)).join(', ')} ms, established ${estMs.map(x => x.toFixed(0)).join(', ')} ms`)

  // 2. Makespan with 30% of providers killed at 30% progress vs no churn.
  // Tasks long enough that provider capacity, not the shared CPU, sets the makespan.
  const taskMs = 50
  const m = quick ? 400 : 800
  // Alternating pairs, medians: single runs on a shared machine swing by 20-30%.
  const calms: number[] = []; const churns: number[] = []
  let churn!: { summary: JobSummary, ms: number }
  for (let k = 0; k < 3; k++) {
    calms.push((await runJob(m, providers(10, { delayMs: taskMs, slots: 4 }), { taskMs })).ms)
    churn = await runJob(m, providers(10, { delayMs: taskMs, slots: 4 }), { taskMs, kill: 3, killAtFraction: 0.3 })
    churns.push(churn.ms)
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const calm = { ms: median(calms) }
  churn = { ...churn, ms: median(churns) }
  const ratio = churn.ms / calm.ms
  notes.push(`churn runs (ms): no churn ${calms.map(x => x.toFixed(0)).join(', ')}; churn ${churns.map(x => x.toFixed(0)).join(', ')}; ideal recovery (capacity 70% from 30% progress) is 1.3x`)
  metrics.makespan_churn_ms = metric(churn.ms, 'ms', calm.ms, '<= 1.5x no churn', ratio <= 1.5)
  metrics.churn_retries = metric(churn.summary.retries + churn.summary.speculative, 'copies')
  notes.push(`churn: ${m} tasks of ${taskMs} ms over 10 providers x 4 slots, verification off; 3 providers stop answering (like kill -9: no heartbeats, running tasks never return) after 30% of tasks are accepted; lease timeout 400 ms; ${churn.summary.leasesLost} leases lost, ${churn.summary.retries} retries, ${churn.summary.speculative} speculative copies`)

  // 2b. The same with provider processes and a real kill -9 (IPC instead of calls in process).
  const pm = quick ? 500 : 1000
  const pTaskMs = 40
  const procRun = async (kill: number): Promise<{ ms: number, summary: JobSummary, tps?: number }> => {
    const tr = await ProcessTransport.start(Array.from({ length: 10 }, (_, i) => ({ kind: 'fake' as const, secretKey: toHex(key(150 + i).secretKey), slots: 4, delayMs: pTaskMs, heartbeatMs: 100 })), { sender: owner.peerId })
    try {
      let accepted = 0
      const victims = tr.ids().slice(0, kill)
      const r = new JobRunner({
        jobId: (++jobSeq).toString(16).padStart(64, '0'), manifest: manifest({ inputs: { range: { from: 0, to: pm - 1 } }, task: { timeoutMs: 30_000, expectedMs: pTaskMs }, verification: OFF }).manifest,
        holder: owner, transport: tr, code: new Uint8Array([0]), leaseTimeoutMs: 400,
        onEvent: e => { if (e.type === 'accepted' && ++accepted === Math.floor(pm * 0.3)) for (const v of victims) tr.kill(v) }
      })
      const t = performance.now()
      const summary = await r.run()
      if (summary.done !== pm) throw new Error(`process job ended with ${summary.done}/${pm}`)
      return { ms: performance.now() - t, summary }
    } finally { tr.stop() }
  }
  const pCalms: number[] = []; const pChurns: number[] = []
  let pChurn!: { ms: number, summary: JobSummary }
  for (let k = 0; k < (quick ? 1 : 2); k++) {
    pCalms.push((await procRun(0)).ms)
    pChurn = await procRun(3)
    pChurns.push(pChurn.ms)
  }
  const pc = Math.min(...pCalms); const pk = Math.min(...pChurns)
  metrics.makespan_churn_processes_ms = metric(pk, 'ms', pc, '<= 1.5x no churn', pk / pc <= 1.5)
  notes.push(`churn runs, processes (ms, best of each): no churn ${pCalms.map(x => x.toFixed(0)).join(', ')}; churn ${pChurns.map(x => x.toFixed(0)).join(', ')}`)
  notes.push(`churn (processes): ${pm} tasks of ${pTaskMs} ms over 10 provider processes x 4 slots (IPC); kill -9 of 3 processes after 30% accepted; ${pChurn.summary.leasesLost} leases lost, ${pChurn.summary.retries} retries`)

  // 3. Placement of 10,000 tasks over 1,000 offers vs random placement.
  const rng = createRng(42)
  const offers: OfferView[] = Array.from({ length: 1000 }, (_, i) => ({
    offerId: 'o' + i, provider: 'p' + i, slots: 1 + rng.int(8), priceGpuHour: 0.1 + 2 * rng.next(), priceCpuHour: 0.01,
    perfScore: 0.25 + 3 * rng.next(), expiresAt: 1e12, rttMs: 2 + 250 * rng.next(), bandwidthBytesPerSec: 1e6 + 1e8 * rng.next(), reputation: rng.next()
  }))
  const req: PlacementRequest = { now: 0, taskCount: 10_000, copies: 1, expectedTaskMs: 60_000, inputBytes: 1e6, gpuCount: 1, cores: 4 }
  const reps = quick ? 5 : 20
  const times: number[] = []; const randomTimes: number[] = []
  let placed = placeTasks(req, offers); let random = placeRandomly(req, offers, rng)
  for (let i = 0; i < reps; i++) {
    let t = performance.now(); placed = placeTasks(req, offers); times.push(performance.now() - t)
    t = performance.now(); random = placeRandomly(req, offers, rng); randomTimes.push(performance.now() - t)
  }
  times.sort((a, b) => a - b); randomTimes.sort((a, b) => a - b)
  const p50 = times[Math.floor(times.length / 2)]; const max = times[times.length - 1]
  metrics.placement_10k_x_1k_ms_p50 = metric(p50, 'ms', randomTimes[Math.floor(randomTimes.length / 2)], '< 100 ms', max < 100)
  metrics.placement_predicted_makespan_s = metric(placed.makespanMs / 1000, 's', random.makespanMs / 1000)
  metrics.placement_predicted_cost = metric(placed.totalPrice, 'price units', random.totalPrice)
  notes.push(`placement: ${reps} runs, max ${max.toFixed(1)} ms; offers with random perf 0.25-3.25, price, slots 1-8, RTT 2-250 ms, bandwidth, reputation; baseline = each task on a uniformly random usable offer (time and predicted quality)`)

  return { metrics, notes }
}
