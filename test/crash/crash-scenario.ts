// Crash safety of a paid grid job end to end (payment v2): one submitter daemon and three
// provider daemons as OS processes on ONE anvil (demo/network.ts), each provider staked with its
// own key. Each trial runs one job and kill -9s one process at a point of the job's life or of
// its payment, restarts it on the same data dir, and checks:
//   - the job finishes with every result correct (one accepted result per task);
//   - the submitter's view (`POST /v1/jobs/:id/settle`, `GET /v1/jobs/:id/payments`): every
//     payable amount signed (sum of the final cumulative vouchers = what the job committed),
//     nothing refused (honest providers), the job closed on chain, settling again changes nothing;
//   - each paid provider redeems through its own node, and then on the shared chain: its
//     `redeemed(jobId, provider)` and the sum of its `Redeemed` events for the job both equal
//     the submitter's final signed cumulative voucher (paid once, never more, nothing lost), the
//     escrow's `paid` is their sum, and the provider's own `GET /v1/earnings` row agrees;
// and, after all trials, the submitter's store: per job and payout, the payable receipts add up
// to the signed voucher (count and amount), each receipt key recorded once.
import * as assert from 'uvu/assert'
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { createPublicClient, http, parseAbiItem, type Hex } from 'viem'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { sleep, waitUntil } from '../helpers/wait.js'
import { createRng, type Rng } from '../../src/core/rng.js'
import { planTiles } from '../../src/compute/mandelbrot.js'
import { WasmExecutor } from '../../src/compute/executors/wasm.js'
import { redeemAll, redeemedOnChain, type EarningsRow, type PaidNetwork } from '../payment/paid-network.js'
import { recordsJobManifest } from '../helpers/manifest.js'

export const KILL_POINTS = ['submitter-after-submit', 'submitter-mid-job', 'provider-mid-job', 'submitter-after-finish', 'submitter-during-settle', 'provider-during-redeem'] as const
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

export interface TrialReport { trial: number, point: KillPoint, at: string, jobId: string, receipts: number, paidProviders: number, committed: string, ms: number }

const LOC = '35.68,139.69'
/** What providers ask per CPU-hour: a tile then bills more than a redeem costs in gas (src/chain/redeemer.ts holds smaller amounts). */
const PRICE_CPU_HOUR = 100
const PROVIDER_EXTRA = ['--no-connection-monitor', '--price-cpu-hour', String(PRICE_CPU_HOUR)]
const SUBMITTER_EXTRA = ['--no-connection-monitor']

/** The submitter's `dbc job settle` view (src/node/job-payments.ts SettleView, JSON). */
interface SettleView {
  jobId: string
  chainJobId: Hex
  deposited: string
  closedAt?: number
  payment: { committed: string, billed: string, refused: string, providers: Array<{ payout: string, intended: string, signed: string, receipts: number, forfeited?: string }>, refusals: unknown[] }
  chain?: { payer: string, escrow: string, paid: string, providers: Array<{ provider: string, signed: string, redeemed: string }> }
}

class Cluster {
  submitter!: LocalNode
  providers: LocalNode[] = []
  /** Each node's EVM account (lower case). */
  readonly accounts = new Map<string, string>()
  constructor (readonly net: LocalNetwork, private readonly log: (s: string) => void) {}

  async start (): Promise<void> {
    this.submitter = await this.net.start({ name: 'submitter', location: LOC, extra: SUBMITTER_EXTRA }, [], { timeoutMs: 120_000 })
    this.providers = await Promise.all([0, 1, 2].map(async i => await this.net.start({ name: `p${i}`, location: LOC, extra: PROVIDER_EXTRA }, [this.submitter.addrs[0]], { timeoutMs: 120_000 })))
    await this.connected()
    // each provider stakes with its own key when it starts on a local network: redeeming needs it
    for (const node of [this.submitter, ...this.providers]) {
      await waitFor(`${node.spec.name}'s wallet`, async () => {
        const w = await node.api.call<{ account: string, stake?: { gpus: number } }>('GET', '/v1/wallet')
        this.accounts.set(node.spec.name, w.account.toLowerCase())
        return node === this.submitter || (w.stake?.gpus ?? 0) > 0
      }, 120_000)
    }
  }

  /** The shape test/payment/paid-network.ts's helpers take. */
  paid (): PaidNetwork {
    const accounts = new Map<LocalNode, string>()
    for (const n of [this.submitter, ...this.providers]) accounts.set(n, this.accounts.get(n.spec.name)!)
    return { net: this.net, submitter: this.submitter, providers: this.providers, accounts }
  }

  providerOf (account: string): LocalNode {
    const p = this.providers.find(n => this.accounts.get(n.spec.name) === account.toLowerCase())
    if (p === undefined) throw new Error(`account ${account} is none of the providers`)
    return p
  }

  /** Waits until the submitter is connected to every live provider. */
  async connected (ms = 60_000): Promise<void> {
    await waitFor('providers connected to the submitter', async () => {
      const { peers } = await this.submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
      return this.providers.every(p => peers.some(x => x.peerId === p.peerId))
    }, ms)
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
    this.submitter = await this.net.start({ name: 'submitter', location: LOC, extra: SUBMITTER_EXTRA }, this.providers.map(p => p.addrs[0]), { timeoutMs: 120_000 })
    await this.connected()
  }

  async restartProvider (i: number): Promise<void> {
    await this.kill(this.providers[i])
    this.providers[i] = await this.net.start({ name: `p${i}`, location: LOC, extra: PROVIDER_EXTRA }, [this.submitter.addrs[0]], { timeoutMs: 120_000 })
    await this.connected()
  }
}

async function jobStatus (c: Cluster, jobId: string): Promise<Record<string, any>> {
  return await c.submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 5000 })
}

const waitFor = async (what: string, fn: () => Promise<boolean>, ms: number): Promise<void> => { await waitUntil(what, fn, { ms, everyMs: 150 }) }

/**
 * A job of `tasks` Mandelbrot tiles (up to a few hundred ms of CPU each: every receipt bills a non-zero
 * amount, and a kill lands mid-job), in an order shuffled per trial so that results mixed up
 * between jobs or tasks would not match. Expected outputs come from the same wasm module run
 * here once per tile. budget.total is far above the cost: the escrow never runs out.
 */
async function writeJob (dir: string, tasks: number, salt: number, rng: Rng): Promise<{ manifest: Record<string, unknown>, expected: string[] }> {
  mkdirSync(dir, { recursive: true })
  const pool = await tilePool(tasks)
  const order = pool.map((_, i) => i)
  for (let i = order.length - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]] }
  writeFileSync(join(dir, 'tiles.bin'), Buffer.concat(order.map(i => pool[i].input)))
  const manifest = recordsJobManifest(`crash-${salt}`, 'mandelbrot', 'tiles.bin', {
    resources: { cores: 1, memoryMib: 64 },
    budget: { total: 5, maxPricePerHour: 2 * PRICE_CPU_HOUR },
    // one copy per task: the default spot checks would double the copies of new providers (runtime)
    verification: { mode: 'off', redundancy: 1 },
    task: { timeoutMs: 15_000, expectedMs: 50, maxAttempts: 8 }
  })
  return { manifest, expected: order.map(i => pool[i].output) }
}

let pool: Array<{ input: Uint8Array, output: string }> | undefined
async function tilePool (n: number): Promise<Array<{ input: Uint8Array, output: string }>> {
  if (pool !== undefined && pool.length === n) return pool
  const tiles = planTiles(16 * n, 16, 16, { x0: -2.2, y0: -0.3, step: 3 / (16 * n), maxIterations: 200_000 })
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

/** Why a job failed: the first failed tasks' copies and what each provider's node says of its payments. */
async function diagnose (c: Cluster, jobId: string, st: Record<string, any>): Promise<string> {
  const out: string[] = []
  for (const f of (st.summary?.failures ?? []).slice(0, 2) as Array<{ index: number }>) {
    out.push(`task ${f.index}: ${JSON.stringify((await c.submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}/explain?task=${f.index}`).catch((e: Error): Record<string, any> => ({ error: e.message }))).task ?? {})}`)
  }
  out.push(`submitter payments: ${JSON.stringify(await c.submitter.api.call('GET', `/v1/jobs/${jobId}/payments`).catch(e => String(e)))}`)
  for (const p of c.providers) out.push(`${p.spec.name} status: ${JSON.stringify(await p.api.call('GET', '/v1/status').catch(e => String(e)))}`)
  return out.join('\n')
}

async function settle (c: Cluster, jobId: string): Promise<SettleView> {
  return await c.submitter.api.call<SettleView>('POST', `/v1/jobs/${jobId}/settle`, {}, { timeoutMs: 120_000 })
}

/** The submitter's side: every payable amount signed, nothing refused, closed on chain, a second settle changes nothing. */
async function checkSigned (c: Cluster, jobId: string, s: SettleView): Promise<Map<string, bigint>> {
  const p = s.payment
  assert.ok(BigInt(p.committed) > 0n, `job ${jobId} paid nothing: the on-chain checks would be vacuous`)
  assert.is(p.refused, '0', `job ${jobId}: honest receipts refused: ${JSON.stringify(p.refusals)}`)
  assert.is(p.committed, p.billed, `job ${jobId}: committed ${p.committed} of ${p.billed} billed`)
  const signed = new Map<string, bigint>()
  for (const x of p.providers) {
    assert.is(x.forfeited, undefined, `job ${jobId}: payout ${x.payout} forfeited (${String(x.forfeited)})`)
    assert.is(x.signed, x.intended, `job ${jobId}: ${x.payout} was meant ${x.intended} but signed ${x.signed}`)
    if (BigInt(x.signed) > 0n) signed.set(x.payout.toLowerCase(), BigInt(x.signed))
  }
  assert.is([...signed.values()].reduce((a, b) => a + b, 0n), BigInt(p.committed), `job ${jobId}: the final vouchers do not add up to what the job committed`)
  assert.ok(s.closedAt !== undefined, `job ${jobId} was not closed on chain`)
  const again = await settle(c, jobId)
  assert.equal(again.payment.providers.map(x => [x.payout, x.signed, x.receipts]), p.providers.map(x => [x.payout, x.signed, x.receipts]), 'a second settle changed what was signed')
  return signed
}

/** The chain's side, after every paid provider redeemed through its own node. */
async function checkRedeemed (c: Cluster, jobId: string, chainJobId: Hex, signed: Map<string, bigint>): Promise<void> {
  const { rpc } = await c.net.chain()
  const { contract } = await c.submitter.api.call<{ contract: Hex }>('GET', '/v1/wallet')
  const paidNet = c.paid()
  const rows = await redeemAll(paidNet, chainJobId, [...signed.keys()].map(a => c.providerOf(a)))
  const client = createPublicClient({ transport: http(rpc) })
  const logs = await client.getLogs({ address: contract, event: parseAbiItem('event Redeemed(bytes32 indexed jobId, address indexed provider, uint256 amount, uint256 cumulative)'), args: { jobId: chainJobId }, fromBlock: 0n, toBlock: 'latest' })
  const events = new Map<string, bigint>()
  for (const l of logs) events.set(l.args.provider!.toLowerCase(), (events.get(l.args.provider!.toLowerCase()) ?? 0n) + l.args.amount!)
  // what each provider redeemed: its final voucher, or (dust its policy will not spend gas on) what it had redeemed before
  const redeemedBy = new Map<string, bigint>()
  for (const [account, want] of signed) {
    const node = c.providerOf(account)
    const row: EarningsRow | undefined = rows.get(node)
    assert.ok(row !== undefined, `${node.spec.name} has no earnings row for job ${jobId}`)
    assert.is(BigInt(row.signed), want, `${node.spec.name}: the voucher it holds is not the submitter's final one`)
    const dust = (row.note ?? '').startsWith('not worth redeeming')
    const got = dust ? BigInt(row.redeemed) : want
    if (dust) assert.is(BigInt(row.redeemed) + BigInt(row.pending), want, `${node.spec.name}: redeemed + pending is not its voucher`)
    redeemedBy.set(account, got)
    assert.is(await redeemedOnChain(paidNet, contract, chainJobId, account), got, `job ${jobId}: redeemed(${node.spec.name}) on chain differs from ${dust ? 'what its node redeemed' : `the submitter's final voucher ${want}`}`)
    assert.is(events.get(account) ?? 0n, got, `job ${jobId}: ${node.spec.name}'s Redeemed events add up to ${events.get(account) ?? 0n}, expected ${got}`)
    assert.is(BigInt(row.redeemed), got, `${node.spec.name}: its own node reads ${row.redeemed} redeemed`)
  }
  assert.is([...events.keys()].filter(a => !signed.has(a)).length, 0, `job ${jobId}: someone the submitter never signed for redeemed`)
  const view = await c.submitter.api.call<SettleView>('GET', `/v1/jobs/${jobId}/payments`)
  const sum = [...redeemedBy.values()].reduce((a, b) => a + b, 0n)
  assert.is(BigInt(view.chain?.paid ?? -1), sum, `job ${jobId}: the escrow paid ${String(view.chain?.paid)}, the providers redeemed ${sum}`)
  for (const x of view.chain?.providers ?? []) assert.is(BigInt(x.redeemed), redeemedBy.get(x.provider.toLowerCase()) ?? 0n, `job ${jobId}: the submitter's node reads ${x.redeemed} redeemed by ${x.provider}`)
}

/** After the run, in the submitter's own store: per job and payout, the payable receipts add up to the signed voucher. */
export function checkStore (dataDir: string, jobIds: string[]): { receipts: number, vouchers: number } {
  const db = new DatabaseSync(join(dataDir, 'node.db'))
  try {
    let receipts = 0; let vouchers = 0
    for (const jobId of jobIds) {
      const vs = db.prepare('SELECT payout, signed_cumulative AS signed, signed_count AS n FROM job_vouchers WHERE job_id = ?').all(jobId) as Array<{ payout: string, signed: string, n: number }>
      assert.ok(vs.length > 0, `no vouchers of job ${jobId} in the submitter's store`)
      for (const v of vs) {
        const rows = db.prepare('SELECT payable FROM job_payments WHERE job_id = ? AND payout = ? AND payable != \'0\'').all(jobId, v.payout) as Array<{ payable: string }>
        assert.is(rows.length, v.n, `job ${jobId}, ${v.payout}: ${rows.length} payable receipts, the voucher counts ${v.n}`)
        assert.is(rows.reduce((a, r) => a + BigInt(r.payable), 0n).toString(), v.signed, `job ${jobId}, ${v.payout}: the receipts do not add up to the voucher`)
        receipts += rows.length; vouchers++
      }
    }
    return { receipts, vouchers }
  } finally {
    db.close()
  }
}

async function trial (c: Cluster, rng: Rng, n: number, point: KillPoint, tasks: number, log: (s: string) => void): Promise<TrialReport> {
  const t0 = Date.now()
  const salt = 1000 * (n + 1)
  const dir = join(c.net.root, `job-${n}`)
  const { manifest, expected } = await writeJob(dir, tasks, salt, rng)
  const { jobId } = await c.submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 60_000 })
  let at = ''
  const fraction = rng.next() * 0.6
  if (point === 'submitter-after-submit') {
    // escrow deposit and leasing happen in these first moments
    const ms = rng.int(300)
    await sleep(ms)
    at = `${ms} ms after submit`
    await c.restartSubmitter()
  } else if (point === 'submitter-mid-job' || point === 'provider-mid-job') {
    const want = Math.floor(fraction * tasks)
    await waitFor(`${want} tasks done`, async () => { const s = await jobStatus(c, jobId); return s.done >= want || s.status !== 'running' }, 120_000)
    const s = await jobStatus(c, jobId)
    at = `${String(s.done)}/${tasks} tasks done`
    if (point === 'submitter-mid-job') {
      await c.restartSubmitter()
    } else {
      const i = rng.int(c.providers.length)
      at += `, provider p${i}`
      await c.kill(c.providers[i])
      // the job must finish on the other providers; the victim comes back and redeems what it was signed
      await waitFor(`job ${jobId} to finish without p${i}`, async () => (await jobStatus(c, jobId)).status !== 'running', 180_000)
      await c.restartProvider(i)
    }
  }
  await waitFor(`job ${jobId} to finish`, async () => (await jobStatus(c, jobId)).status !== 'running', 180_000)
  const st = await jobStatus(c, jobId)
  if (st.status !== 'finished') log(`job ${jobId} ${String(st.status)}:\n${await diagnose(c, jobId, st)}`)
  assert.is(st.status, 'finished', `job ${jobId} ended ${String(st.status)} after a kill at ${point} (${at}): ${JSON.stringify(st.summary?.failures?.slice(0, 5) ?? st)}`)
  await checkResults(c, jobId, expected)
  if (point === 'submitter-after-finish') {
    at = 'job finished, before settle'
    await c.restartSubmitter()
  } else if (point === 'submitter-during-settle') {
    // settle flushes the vouchers, closes the job on chain and looks for a due refund
    const ms = rng.int(600)
    at = `${ms} ms into settle`
    const inflight = settle(c, jobId).catch(() => undefined)
    await sleep(ms)
    await c.restartSubmitter()
    await inflight
  }
  const s = await settle(c, jobId)
  const signed = await checkSigned(c, jobId, s)
  if (point === 'provider-during-redeem') {
    // a paid provider dies a random moment into its redeem (before, during or after the broadcast)
    const paidNodes = [...signed.keys()].map(a => c.providerOf(a))
    const victim = paidNodes[rng.int(paidNodes.length)]
    const i = c.providers.indexOf(victim)
    const ms = rng.int(400)
    at = `${ms} ms into p${i}'s redeem`
    const inflight = victim.api.call('POST', '/v1/chain/redeem', undefined, { timeoutMs: 60_000 }).catch(() => undefined)
    await sleep(ms)
    await c.restartProvider(i)
    await inflight
  }
  await checkRedeemed(c, jobId, s.chainJobId, signed)
  const receipts = s.payment.providers.reduce((a, x) => a + x.receipts, 0)
  const report: TrialReport = { trial: n, point, at, jobId, receipts, paidProviders: signed.size, committed: s.payment.committed, ms: Date.now() - t0 }
  log(`trial ${n}: ${point} (${at}): ${receipts} receipts paid to ${signed.size} providers, all redeemed once, ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  return report
}

export async function runCrashTrials (opts: CrashRunOptions): Promise<{ trials: TrialReport[], store: { receipts: number, vouchers: number } }> {
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
    // the store of the (many times killed) submitter, read after it stopped
    const dataDir = c.submitter.dataDir
    await c.kill(c.submitter)
    const store = checkStore(dataDir, reports.map(r => r.jobId))
    return { trials: reports, store }
  } catch (err) {
    for (const n of net.nodes.slice(-4)) log(`--- ${n.spec.name} log tail ---\n${net.logOf(n).slice(-2500)}`)
    throw err
  } finally {
    await net.stop()
    await reference.close()
  }
}
