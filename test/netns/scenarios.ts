// Scenarios over a NetnsCluster, shared by the quick test (npm test) and the long one
// (npm run test:long). Each returns what it measured; the tests assert on it.
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { referenceTileInput } from '../../src/compute/benchmark.js'
import { sleep, type NetnsCluster, type NetnsHost } from './harness.js'
import { recordsJobManifest, type RecordModule } from '../helpers/manifest.js'

export interface PairRtt { from: string, to: string, modelRttMs: number, measuredRttMs?: number, vivaldiRttMs?: number, relErr?: number }

/** Every host's view of every other (GET /v1/peers/near, the route behind `dbc peers --near --json`). */
export async function pairRtts (c: NetnsCluster): Promise<PairRtt[]> {
  const out: PairRtt[] = []
  for (const a of c.hosts) {
    const { peers } = await c.api<{ peers: Array<{ peerId: string, vivaldiRttMs?: number, measuredRttMs?: number }> }>(a, 'GET', '/v1/peers/near?n=100')
    for (const b of c.hosts) {
      if (a === b) continue
      const p = peers.find(x => x.peerId === b.peerId)
      const row: PairRtt = { from: a.spec.name, to: b.spec.name, modelRttMs: c.oneWayMs(a, b) + c.oneWayMs(b, a), measuredRttMs: p?.measuredRttMs, vivaldiRttMs: p?.vivaldiRttMs }
      if (row.measuredRttMs !== undefined && row.vivaldiRttMs !== undefined) row.relErr = Math.abs(row.vivaldiRttMs - row.measuredRttMs) / row.measuredRttMs
      out.push(row)
    }
  }
  return out
}

/** Polls until `share` of the pairs have Vivaldi within `tol` of measured RTT, or time runs out. */
export async function awaitVivaldi (c: NetnsCluster, opts: { share: number, tol: number, timeoutMs: number }): Promise<{ rows: PairRtt[], withinShare: number, waitedMs: number }> {
  const t0 = Date.now()
  for (;;) {
    const rows = await pairRtts(c)
    const within = rows.filter(r => r.relErr !== undefined && r.relErr <= opts.tol).length / rows.length
    if (within >= opts.share || Date.now() - t0 > opts.timeoutMs) return { rows, withinShare: within, waitedMs: Date.now() - t0 }
    await sleep(3000)
  }
}

/** Waits until every host is connected to every other (a full mesh of 5-6 hosts is quick). */
export async function awaitMesh (c: NetnsCluster, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let missing = 0
    for (const a of c.hosts) {
      const { peers } = await c.api<{ peers: Array<{ peerId: string }> }>(a, 'GET', '/v1/peers')
      missing += c.hosts.filter(b => b !== a && !peers.some(p => p.peerId === b.peerId)).length
    }
    if (missing === 0) return
    if (Date.now() > deadline) throw new Error(`hosts not fully connected after ${timeoutMs} ms (${missing} links missing)`)
    await sleep(500)
  }
}

export function summarize (xs: number[]): { n: number, p50: number, p90: number, max: number } {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN
  return { n: s.length, p50: q(0.5), p90: q(0.9), max: s[s.length - 1] ?? NaN }
}

export interface JobRun { jobId: string, status: Record<string, any>, makespanMs: number, results: Array<{ index: number, output: string }>, byProvider: Record<string, number>, events: number }

/** A squares grid job from `submitter`; optionally calls `during(progressDone)` on every progress event. */
export interface JobOptions { redundancy?: number, taskTimeoutMs?: number, placement?: 'cost-model' | 'random', during?: (done: number) => Promise<void> | void }

/** The squares job's input: `tasks` doubles (i * 0.5 + 1), one per task. */
export function squaresInput (tasks: number): Buffer {
  const data = Buffer.alloc(8 * tasks)
  for (let i = 0; i < tasks; i++) data.writeDoubleLE(i * 0.5 + 1, i * 8)
  return data
}

/**
 * The squares job the NAT tests submit through the control API: its input written under
 * `root/name`, one core, 64 MiB, one copy per task (a single provider: nothing to check it against).
 */
export function squaresJobFiles (root: string, name: string, tasks: number): { dir: string, manifest: Record<string, unknown> } {
  const dir = join(root, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'data.bin'), squaresInput(tasks))
  const manifest = recordsJobManifest(name, 'square', 'data.bin', {
    resources: { cores: 1, memoryMib: 64 },
    budget: { total: 5, maxPricePerHour: 200 },
    verification: { redundancy: 1, mode: 'off' },
    task: { timeoutMs: 30_000, expectedMs: 5, maxAttempts: 8 },
    placement: 'cost-model'
  })
  return { dir, manifest }
}

export async function runSquaresJob (c: NetnsCluster, submitter: NetnsHost, tasks: number, opts: JobOptions = {}): Promise<JobRun> {
  return await runJob(c, submitter, 'squares', 'square', squaresInput(tasks), opts)
}

/**
 * `tasks` copies of the reference Mandelbrot tile (about 4 ms of CPU each): unlike squares
 * (under 1 ms, so their receipts bill 0 units), these receipts carry a non-zero amount and can
 * be settled. Every task has the same input, so every accepted output must be the same.
 */
export async function runTilesJob (c: NetnsCluster, submitter: NetnsHost, tasks: number, opts: JobOptions = {}): Promise<JobRun> {
  const tile = referenceTileInput()
  const data = Buffer.concat(Array.from({ length: tasks }, () => Buffer.from(tile)))
  return await runJob(c, submitter, 'tiles', 'mandelbrot', data, opts)
}

/**
 * A tiles job (4 s task timeout) during which `victims` lose their links once a fifth of the tasks
 * are done and get them back `healMs` later; resolves after the heal, with the number of tasks done
 * at the cut (-1: the job ended first).
 */
export async function runTilesJobWithPartition (c: NetnsCluster, submitter: NetnsHost, tasks: number, victims: NetnsHost[], healMs: number): Promise<{ run: JobRun, cutAt: number }> {
  let cutAt = -1
  let healed: Promise<void> | undefined
  const run = await runTilesJob(c, submitter, tasks, {
    taskTimeoutMs: 4000,
    during: (done) => {
      if (cutAt >= 0 || done < tasks * 0.2) return
      cutAt = done
      for (const v of victims) c.setLink(v, false)
      healed = new Promise(resolve => setTimeout(() => { for (const v of victims) c.setLink(v, true); resolve() }, healMs))
    }
  })
  await healed
  return { run, cutAt }
}

async function runJob (c: NetnsCluster, submitter: NetnsHost, name: string, module: RecordModule, data: Buffer, opts: JobOptions): Promise<JobRun> {
  const dir = join(c.root, `job-${Date.now()}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'data.bin'), data)
  const manifest = recordsJobManifest(name, module, 'data.bin', {
    resources: { cores: 1, memoryMib: 64 },
    // providers ask PROVIDER_PRICE; budget.total is far above any of these jobs' cost (escrow never runs out)
    budget: { total: 5, maxPricePerHour: 200 },
    verification: { redundancy: opts.redundancy ?? 1 },
    task: { timeoutMs: opts.taskTimeoutMs ?? 20_000, expectedMs: 5, maxAttempts: 8 },
    placement: opts.placement ?? 'cost-model'
  })
  const t0 = Date.now()
  const { jobId } = await c.api<{ jobId: string }>(submitter, 'POST', '/v1/jobs', { manifest, baseDir: dir })
  let status: Record<string, any> = {}
  let events = 0
  for await (const ev of c.stream<Record<string, any>>(submitter, 'GET', `/v1/jobs/${jobId}/events`)) {
    events++
    if (ev.type === 'end') { status = ev.status; break }
    if (opts.during !== undefined) await opts.during(ev.progress?.done ?? 0)
  }
  const makespanMs = Date.now() - t0
  const { results } = await c.api<{ results: Array<{ index: number, output: string, provider?: string }> }>(submitter, 'GET', `/v1/jobs/${jobId}/results`)
  const byProvider: Record<string, number> = {}
  for (const r of results as Array<Record<string, any>>) {
    const p = String(r.provider ?? r.providerId ?? r.peer ?? '?')
    const name = c.hosts.find(h => h.peerId === p)?.spec.name ?? p
    byProvider[name] = (byProvider[name] ?? 0) + 1
  }
  return { jobId, status, makespanMs, results, byProvider, events }
}

/** Checks a tiles job: one result per task, all the same non-empty output (same input everywhere). */
export function checkTiles (run: JobRun, tasks: number): string[] {
  const problems: string[] = []
  if (run.results.length !== tasks) problems.push(`${run.results.length} results for ${tasks} tasks`)
  const seen = new Set<number>()
  const outputs = new Set<string>()
  for (const r of run.results) {
    if (seen.has(r.index)) problems.push(`task ${r.index} has two accepted results`)
    seen.add(r.index)
    outputs.add(r.output)
  }
  if (outputs.size !== 1) problems.push(`${outputs.size} different outputs for one input`)
  if ([...outputs][0]?.length === 0) problems.push('empty output')
  return problems
}

/** Checks every result of a squares job; returns the problems found (empty = all correct, each once). */
export function checkSquares (run: JobRun, tasks: number): string[] {
  const problems: string[] = []
  if (run.results.length !== tasks) problems.push(`${run.results.length} results for ${tasks} tasks`)
  const seen = new Set<number>()
  for (const r of run.results) {
    if (seen.has(r.index)) problems.push(`task ${r.index} has two accepted results`)
    seen.add(r.index)
    const x = r.index * 0.5 + 1
    const got = Buffer.from(r.output, 'base64').readDoubleLE(0)
    if (got !== x * x) problems.push(`task ${r.index}: ${got} != ${x * x}`)
  }
  return problems
}

/** Which host ran each task's accepted copy, and how many copies each task had (GET /explain per task). */
export async function placementOf (c: NetnsCluster, submitter: NetnsHost, jobId: string, tasks: number): Promise<{ byHost: Record<string, number>, copiesPerTask: number[] }> {
  const byHost: Record<string, number> = {}
  const copiesPerTask: number[] = []
  for (let i = 0; i < tasks; i++) {
    const ex = await c.api<{ task: { acceptedHash?: string, copies: Array<{ provider: string, outcome: string, hash?: string }> } }>(submitter, 'GET', `/v1/jobs/${jobId}/explain?task=${i}`)
    copiesPerTask.push(ex.task.copies.length)
    const ok = ex.task.copies.find(x => x.hash === ex.task.acceptedHash && x.outcome === 'agreed') ?? ex.task.copies.find(x => x.hash === ex.task.acceptedHash)
    const name = c.hosts.find(h => h.peerId === ok?.provider)?.spec.name ?? String(ok?.provider)
    byHost[name] = (byHost[name] ?? 0) + 1
  }
  return { byHost, copiesPerTask }
}

/** Round-trip time of every copy of every `step`-th task (dispatch to result, as the submitter saw it), by host. */
export async function copyTimes (c: NetnsCluster, submitter: NetnsHost, jobId: string, tasks: number, step = 1): Promise<{ all: number[], byHost: Record<string, number[]> }> {
  const all: number[] = []
  const byHost: Record<string, number[]> = {}
  for (let i = 0; i < tasks; i += step) {
    const ex = await c.api<{ task: { copies: Array<{ provider: string, ms?: number }> } }>(submitter, 'GET', `/v1/jobs/${jobId}/explain?task=${i}`)
    for (const cp of ex.task.copies) {
      if (cp.ms === undefined) continue
      all.push(cp.ms)
      const n = c.hosts.find(h => h.peerId === cp.provider)?.spec.name ?? '?'
      ;(byHost[n] ??= []).push(cp.ms)
    }
  }
  return { all, byHost }
}

/** What the netns providers ask per CPU-hour (DBC): a tile then bills more than a redeem costs in gas. */
export const PROVIDER_PRICE = ['--price-cpu-hour', '100']

/** Waits until every provider staked itself with its own key on the cluster's chain (auto-stake on `local`). */
export async function awaitStaked (c: NetnsCluster, providers: NetnsHost[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const p of providers) {
    for (;;) {
      const w = await c.api<{ stake?: { gpus: number } }>(p, 'GET', '/v1/wallet').catch(() => undefined)
      if ((w?.stake?.gpus ?? 0) > 0) break
      if (Date.now() > deadline) throw new Error(`${p.spec.name} did not stake itself within ${timeoutMs} ms`)
      await sleep(500)
    }
  }
}

/** The submitter's `POST /v1/jobs/:id/settle` (src/node/job-payments.ts SettleView, JSON). */
export interface SettleView {
  chainJobId: string
  closedAt?: number
  payment: { committed: string, billed: string, refused: string, providers: Array<{ payout: string, intended: string, signed: string, receipts: number }> }
  chain?: { paid: string, providers: Array<{ provider: string, signed: string, redeemed: string }> }
}

export interface PaidRun { first: SettleView, again: SettleView, redeemed: Array<{ host: string, account: string, signed: bigint, redeemed: bigint, earnedSigned: bigint }>, after: SettleView }

/**
 * Settles a job twice (the second must change nothing), then lets every provider the submitter
 * signed for redeem through its own node, and reads what each one's node and the submitter's
 * node say was redeemed on the shared chain.
 */
export async function settleAndRedeem (c: NetnsCluster, submitter: NetnsHost, providers: NetnsHost[], jobId: string): Promise<PaidRun> {
  const first = await c.api<SettleView>(submitter, 'POST', `/v1/jobs/${jobId}/settle`, undefined, 120_000)
  const again = await c.api<SettleView>(submitter, 'POST', `/v1/jobs/${jobId}/settle`, undefined, 120_000)
  const accounts = new Map<string, NetnsHost>()
  for (const p of providers) accounts.set((await c.api<{ account: string }>(p, 'GET', '/v1/wallet')).account.toLowerCase(), p)
  const redeemed: PaidRun['redeemed'] = []
  for (const v of first.payment.providers) {
    const host = accounts.get(v.payout.toLowerCase())
    if (host === undefined) throw new Error(`the submitter signed for ${v.payout}, none of the providers`)
    const deadline = Date.now() + 120_000
    for (;;) {
      await c.api(host, 'POST', '/v1/chain/redeem', undefined, 60_000).catch(() => {})
      const e = await c.api<{ jobs: Array<{ chainJobId: string, signed: string, redeemed: string, pending: string }>, inFlight: number }>(host, 'GET', '/v1/earnings', undefined, 30_000)
      const row = e.jobs.find(j => j.chainJobId.toLowerCase() === first.chainJobId.toLowerCase())
      if (row !== undefined && BigInt(row.pending) === 0n && e.inFlight === 0) {
        redeemed.push({ host: host.spec.name, account: v.payout.toLowerCase(), signed: BigInt(v.signed), redeemed: BigInt(row.redeemed), earnedSigned: BigInt(row.signed) })
        break
      }
      if (Date.now() > deadline) throw new Error(`${host.spec.name} did not redeem job ${jobId}: ${JSON.stringify(row)}`)
      await sleep(500)
    }
  }
  const after = await c.api<SettleView>(submitter, 'GET', `/v1/jobs/${jobId}/payments`)
  return { first, again, redeemed, after }
}

/**
 * Checks a paid run against the job's billed copies: every billed copy paid once (one receipt in
 * its provider's voucher), every payable amount signed, a second settle changed nothing, the job
 * closed on chain, and each provider redeemed exactly its final voucher (its own node and the
 * submitter's agree). Returns the problems found (empty = all paid once).
 */
export function paidProblems (p: PaidRun, billed: number): string[] {
  const problems: string[] = []
  const vs = p.first.payment.providers
  const receipts = vs.reduce((n, v) => n + v.receipts, 0)
  const signed = vs.reduce((n, v) => n + BigInt(v.signed), 0n)
  if (receipts !== billed) problems.push(`${receipts} receipts in the vouchers for ${billed} billed copies`)
  if (signed !== BigInt(p.first.payment.committed)) problems.push(`vouchers sum to ${signed}, the job committed ${p.first.payment.committed}`)
  if (signed === 0n) problems.push('nothing was paid: the on-chain checks would be vacuous')
  for (const v of vs) if (v.signed !== v.intended) problems.push(`${v.payout}: meant ${v.intended}, signed ${v.signed}`)
  if (JSON.stringify(p.again.payment.providers) !== JSON.stringify(vs)) problems.push('settling again changed the vouchers')
  if (p.first.closedAt === undefined) problems.push('the job was not closed on chain')
  for (const r of p.redeemed) {
    if (r.redeemed !== r.signed) problems.push(`${r.host} redeemed ${r.redeemed} of the ${r.signed} signed for it`)
    if (r.earnedSigned !== r.signed) problems.push(`${r.host} holds a voucher for ${r.earnedSigned}, the submitter signed ${r.signed}`)
  }
  if (BigInt(p.after.chain?.paid ?? -1) !== signed) problems.push(`the escrow paid ${String(p.after.chain?.paid)}, the vouchers sum to ${signed}`)
  for (const x of p.after.chain?.providers ?? []) {
    const r = p.redeemed.find(y => y.account === x.provider.toLowerCase())
    if (BigInt(x.redeemed) !== (r?.signed ?? 0n)) problems.push(`the submitter's node reads ${x.redeemed} redeemed by ${x.provider}`)
  }
  return problems
}
