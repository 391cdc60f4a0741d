// Crash safety of a grid job end to end: one submitter daemon (job store, embedded chain, bridge
// and outbox in its data dir) and three provider daemons. Each trial runs one job and kill -9s
// one process at a random point of the job's life, restarts it on the same data dir, and checks:
//   - the job finishes with every result correct (one accepted result per task);
//   - `POST /v1/jobs/:id/settle` confirms every billed receipt: batches confirmed, their receipt
//     counts and totals add up to the job's receipts, and settling again changes nothing;
//   - on chain (`GET /v1/chain/payouts`), each of the job's batches credited each provider once,
//     with the amount the batch carries;
// and, after all trials, the submitter's store: every receipt id in exactly one confirmed batch.
import * as assert from 'uvu/assert'
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { createRng, type Rng } from '../../src/core/rng.js'
import { planTiles } from '../../src/compute/mandelbrot.js'
import { WasmExecutor } from '../../src/compute/executors/wasm.js'

export const KILL_POINTS = ['submitter-after-submit', 'submitter-mid-job', 'provider-mid-job', 'submitter-after-finish', 'submitter-during-settle'] as const
/** 'none' runs a trial without a kill (the control). */
export type KillPoint = typeof KILL_POINTS[number] | 'none'

export interface CrashRunOptions {
  trials: number
  seed?: number
  tasks?: number
  /** Kill points to draw from (default all), in order when `cycle` is set. */
  points?: readonly KillPoint[]
  cycle?: boolean
  log?: (s: string) => void
}

export interface TrialReport { trial: number, point: KillPoint, at: string, jobId: string, receipts: number, batches: number, total: string, ms: number }

const LOC = '35.68,139.69'
const NODE_EXTRA = ['--no-connection-monitor']

interface Settled { receipts: number, total: string, batches: Array<{ batchId: string, state: string, receiptCount: number, total: string, payouts: Array<{ provider: string, amount: string }> }> }

class Cluster {
  submitter!: LocalNode
  providers: LocalNode[] = []
  constructor (readonly net: LocalNetwork, private readonly log: (s: string) => void) {}

  async start (): Promise<void> {
    this.submitter = await this.net.start({ name: 'submitter', location: LOC, extra: NODE_EXTRA })
    for (let i = 0; i < 3; i++) this.providers.push(await this.net.start({ name: `p${i}`, location: LOC, extra: NODE_EXTRA }, [this.submitter.addrs[0]]))
    await this.connected()
  }

  /** Waits until the submitter is connected to every live provider. */
  async connected (ms = 30_000): Promise<void> {
    const end = Date.now() + ms
    for (;;) {
      const { peers } = await this.submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
      if (this.providers.every(p => peers.some(x => x.peerId === p.peerId))) return
      if (Date.now() > end) throw new Error('providers did not all connect to the submitter')
      await sleep(200)
    }
  }

  async kill (node: LocalNode): Promise<void> {
    if (node.process.exitCode !== null || node.process.signalCode !== null) return
    const exited = new Promise<void>(resolve => node.process.once('exit', () => { resolve() }))
    node.process.kill('SIGKILL')
    await exited
  }

  /** kill -9 the submitter and start it again on the same data dir, dialling the providers. */
  async restartSubmitter (): Promise<void> {
    await this.kill(this.submitter)
    this.log('  submitter killed; restarting on the same data dir')
    this.submitter = await this.net.start({ name: 'submitter', location: LOC, extra: NODE_EXTRA }, this.providers.map(p => p.addrs[0]))
    await this.connected()
  }

  async restartProvider (i: number): Promise<void> {
    await this.kill(this.providers[i])
    this.providers[i] = await this.net.start({ name: `p${i}`, location: LOC, extra: NODE_EXTRA }, [this.submitter.addrs[0]])
    await this.connected()
  }
}

async function sleep (ms: number): Promise<void> { await new Promise(resolve => setTimeout(resolve, ms)) }

/** GET through a submitter that may be down for a moment (restarting): retries until `ms`. */
async function jobStatus (c: Cluster, jobId: string): Promise<Record<string, any>> {
  return await c.submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 5000 })
}

async function waitFor (what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return
    await sleep(150)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/**
 * A job of `tasks` Mandelbrot tiles (tens of ms of CPU each: every receipt bills a non-zero
 * amount, and a kill lands mid-job), in an order shuffled per trial so that results mixed up
 * between jobs or tasks would not match. Expected outputs come from the same wasm module run
 * here once per tile.
 */
async function writeJob (dir: string, tasks: number, salt: number, rng: Rng): Promise<{ manifest: Record<string, unknown>, expected: string[] }> {
  mkdirSync(dir, { recursive: true })
  const pool = await tilePool(tasks)
  const order = pool.map((_, i) => i)
  for (let i = order.length - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]] }
  writeFileSync(join(dir, 'tiles.bin'), Buffer.concat(order.map(i => pool[i].input)))
  const manifest = {
    name: `crash-${salt}`,
    executor: 'wasm',
    code: { wasm: wasmPath },
    entry: 'run',
    inputs: { files: { path: 'tiles.bin', chunkBytes: 36 } },
    resources: { cores: 1, memoryMib: 64 },
    verification: { redundancy: 1 },
    task: { timeoutMs: 15_000, expectedMs: 50, maxAttempts: 8 }
  }
  return { manifest, expected: order.map(i => pool[i].output) }
}

let pool: Array<{ input: Uint8Array, output: string }> | undefined
async function tilePool (n: number): Promise<Array<{ input: Uint8Array, output: string }>> {
  if (pool !== undefined && pool.length === n) return pool
  const tiles = planTiles(16 * n, 16, 16, { x0: -2.2, y0: -0.3, step: 3 / (16 * n), maxIterations: 1_000_000 })
  const code = new Uint8Array(readFileSync(wasmPath))
  pool = []
  for (const t of tiles) {
    const r = await reference.run({ taskId: `ref-${t.index}`, code, entry: 'run', input: t.input, timeoutMs: 60_000, memoryLimitMib: 64, maxOutputBytes: 1 << 20 })
    pool.push({ input: t.input, output: Buffer.from(r.output).toString('base64') })
  }
  return pool
}

const wasmPath = join(repoRoot, 'src/compute/modules/mandelbrot.wasm')
const reference = new WasmExecutor({ workers: 1 })

async function checkResults (c: Cluster, jobId: string, expected: string[]): Promise<void> {
  const { results } = await c.submitter.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${jobId}/results`)
  assert.is(results.length, expected.length, `job ${jobId}: ${results.length} results for ${expected.length} tasks`)
  const seen = new Set<number>()
  for (const r of results) {
    assert.not.ok(seen.has(r.index), `task ${r.index} has two accepted results`)
    seen.add(r.index)
    assert.ok(r.output === expected[r.index], `job ${jobId} task ${r.index}: output differs from the reference`)
  }
}

async function settle (c: Cluster, jobId: string): Promise<Settled> {
  return await c.submitter.api.call<Settled>('POST', `/v1/jobs/${jobId}/settle`, {}, { timeoutMs: 90_000 })
}

/** Settlement of one job: confirmed, adding up, idempotent, and each batch paid once on chain. */
async function checkSettlement (c: Cluster, jobId: string, s: Settled): Promise<void> {
  assert.ok(s.receipts > 0, `job ${jobId} has no billed receipts`)
  assert.ok(BigInt(s.total) > 0n, `job ${jobId} billed nothing: the on-chain check would be vacuous`)
  for (const b of s.batches) assert.is(b.state, 'confirmed', `batch ${b.batchId} of job ${jobId} is ${b.state}`)
  assert.is(s.batches.reduce((n, b) => n + b.receiptCount, 0), s.receipts, `job ${jobId}: batches carry a different number of receipts than the job billed`)
  assert.is(s.batches.reduce((n, b) => n + BigInt(b.total), 0n).toString(), s.total, `job ${jobId}: batch totals do not add up to the receipts' total`)
  // again: nothing new is cut or sent
  const again = await settle(c, jobId)
  assert.equal(again.batches.map(b => [b.batchId, b.state]).sort(), s.batches.map(b => [b.batchId, b.state]).sort(), 'a second settle changed the batches')
  // on chain, per provider: each of this job's batches credited (paid or withheld) exactly once, with its amount
  const byProvider = new Map<string, Map<string, bigint>>()
  for (const b of s.batches) {
    for (const p of b.payouts) {
      const m = byProvider.get(p.provider.toLowerCase()) ?? new Map<string, bigint>()
      m.set(b.batchId, (m.get(b.batchId) ?? 0n) + BigInt(p.amount))
      byProvider.set(p.provider.toLowerCase(), m)
    }
  }
  const ours = new Set(s.batches.map(b => b.batchId))
  for (const [provider, want] of byProvider) {
    const view = await c.submitter.api.call<{ paid: Array<{ batchId: string, amount: string }>, withheld: Array<{ batchId: string, amount: string }> }>('GET', `/v1/chain/payouts?provider=${provider}`)
    const credited = new Map<string, bigint[]>()
    for (const e of [...view.paid, ...view.withheld]) {
      if (!ours.has(e.batchId)) continue
      credited.set(e.batchId, [...(credited.get(e.batchId) ?? []), BigInt(e.amount)])
    }
    for (const [batchId, amount] of want) {
      const got = credited.get(batchId) ?? []
      assert.is(got.length, 1, `batch ${batchId} credited provider ${provider} ${got.length} times on chain`)
      assert.is(got[0], amount, `batch ${batchId}: provider ${provider} credited ${got[0]} instead of ${amount}`)
    }
  }
}

/** After the run, in the submitter's own store: each receipt id in exactly one confirmed batch. */
export function checkOutbox (dataDir: string, jobIds: string[]): { receipts: number, batches: number } {
  const db = new DatabaseSync(join(dataDir, 'node.db'))
  try {
    let receipts = 0; let batches = 0
    for (const jobId of jobIds) {
      const rows = db.prepare('SELECT r.receipt_id AS id, r.batch_id AS batch, o.state AS state FROM chain_receipts r LEFT JOIN chain_outbox o ON o.batch_id = r.batch_id WHERE r.job_id = ? OR r.job_id = ?').all(jobId, `0x${jobId}`) as Array<{ id: string, batch: string | null, state: string | null }>
      assert.ok(rows.length > 0, `no receipts of job ${jobId} in the outbox`)
      for (const r of rows) assert.is(r.state, 'confirmed', `receipt ${r.id} of job ${jobId} is in batch ${String(r.batch)} (${String(r.state)})`)
      const counted = db.prepare('SELECT COALESCE(SUM(receipt_count), 0) AS n, COUNT(*) AS b FROM chain_outbox WHERE job_id = ? OR job_id = ?').get(jobId, `0x${jobId}`) as { n: number, b: number }
      assert.is(counted.n, rows.length, `job ${jobId}: batches count ${counted.n} receipts, the outbox holds ${rows.length}`)
      receipts += rows.length; batches += counted.b
    }
    return { receipts, batches }
  } finally {
    db.close()
  }
}

async function trial (c: Cluster, rng: Rng, n: number, point: KillPoint, tasks: number, log: (s: string) => void): Promise<TrialReport> {
  const t0 = Date.now()
  const salt = 1000 * (n + 1)
  const dir = join(c.net.root, `job-${n}`)
  const { manifest, expected } = await writeJob(dir, tasks, salt, rng)
  const { jobId } = await c.submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir })
  let at = ''
  const fraction = rng.next() * 0.6
  if (point === 'submitter-after-submit') {
    const ms = rng.int(300)
    await sleep(ms)
    at = `${ms} ms after submit`
    await c.restartSubmitter()
  } else if (point === 'submitter-mid-job' || point === 'provider-mid-job') {
    const want = Math.floor(fraction * tasks)
    await waitFor(`${want} tasks done`, async () => { const s = await jobStatus(c, jobId); return s.done >= want || s.status !== 'running' }, 60_000)
    const s = await jobStatus(c, jobId)
    at = `${String(s.done)}/${tasks} tasks done`
    if (point === 'submitter-mid-job') {
      await c.restartSubmitter()
    } else {
      const i = rng.int(c.providers.length)
      at += `, provider p${i}`
      await c.kill(c.providers[i])
      // the job must finish on the other providers; the victim comes back for later trials
      await waitFor(`job ${jobId} to finish without p${i}`, async () => (await jobStatus(c, jobId)).status !== 'running', 120_000)
      await c.restartProvider(i)
    }
  }
  await waitFor(`job ${jobId} to finish`, async () => (await jobStatus(c, jobId)).status !== 'running', 120_000)
  const st = await jobStatus(c, jobId)
  assert.is(st.status, 'finished', `job ${jobId} ended ${String(st.status)} after a kill at ${point} (${at})`)
  await checkResults(c, jobId, expected)
  if (point === 'submitter-after-finish') {
    at = 'job finished, before settle'
    await c.restartSubmitter()
  } else if (point === 'submitter-during-settle') {
    const ms = rng.int(600)
    at = `${ms} ms into settle`
    const inflight = settle(c, jobId).catch(() => undefined)
    await sleep(ms)
    await c.restartSubmitter()
    await inflight
  }
  const s = await settle(c, jobId)
  await checkSettlement(c, jobId, s)
  const report: TrialReport = { trial: n, point, at, jobId, receipts: s.receipts, batches: s.batches.length, total: s.total, ms: Date.now() - t0 }
  log(`trial ${n}: ${point} (${at}): ${s.receipts} receipts in ${s.batches.length} batches, ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  return report
}

export async function runCrashTrials (opts: CrashRunOptions): Promise<{ trials: TrialReport[], outbox: { receipts: number, batches: number } }> {
  const log = opts.log ?? (() => {})
  const rng = createRng(opts.seed ?? 1)
  const points = opts.points ?? KILL_POINTS
  const net = new LocalNetwork()
  const c = new Cluster(net, log)
  const reports: TrialReport[] = []
  try {
    await c.start()
    for (let n = 0; n < opts.trials; n++) {
      const point = opts.cycle === true ? points[n % points.length] : points[rng.int(points.length)]
      reports.push(await trial(c, rng, n, point, opts.tasks ?? 24, log))
    }
    // the store of the (many times killed) submitter, read after a clean stop
    const dataDir = c.submitter.dataDir
    await c.kill(c.submitter)
    const outbox = checkOutbox(dataDir, reports.map(r => r.jobId))
    return { trials: reports, outbox }
  } catch (err) {
    for (const n of net.nodes.slice(-4)) log(`--- ${n.spec.name} log tail ---\n${net.logOf(n).slice(-2500)}`)
    throw err
  } finally {
    await net.stop()
    await reference.close()
  }
}
