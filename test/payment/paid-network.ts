// A paid network for payment tests: a submitter and providers as separate `dbc node start`
// processes on ONE anvil (LocalNetwork), a grid job of squares submitted through the control
// API, and what each node reads of its own money. Always `net.stop()`.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { keccak256, toHex } from 'viem'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { planTiles } from '../../src/compute/mandelbrot.js'

const t0 = Date.now()
/** Progress lines on stderr with DBC_TEST_VERBOSE=1 (where a slow run spends its time). */
export const note = (s: string): void => { if (process.env.DBC_TEST_VERBOSE === '1') process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${s}\n`) }
import { sleep, waitFor } from '../helpers/wait.js'
import { recordsJobManifest } from '../helpers/manifest.js'
export { sleep, waitFor }

/** What the test providers ask per CPU-hour (DBC). */
export const PRICE_CPU_HOUR = 100
/** The tile jobs' task timeout (ms): one task at this time is what providers want escrowed ahead. */
export const TASK_TIMEOUT_MS = 10_000

export interface PaidNetwork { net: LocalNetwork, submitter: LocalNode, providers: LocalNode[], accounts: Map<LocalNode, string> }

/**
 * Starts a submitter and `n` providers on one anvil. `preload[i]`: a module (path from the repo
 * root) preloaded into provider i's process (NODE_OPTIONS=--import), for misbehaving providers.
 */
export async function startPaidNetwork (n: number, preload: Record<number, string> = {}): Promise<PaidNetwork> {
  // providers ask PRICE_CPU_HOUR: a task then bills more than a redeem costs in gas (the redeem
  // loop holds amounts that are not worth their gas, src/chain/redeemer.ts)
  const net = new LocalNetwork()
  const submitter = await net.start({ name: 'submitter', location: 'Tokyo' }, [], { timeoutMs: 120_000 })
  note('submitter up')
  // preloaded providers one at a time (NODE_OPTIONS is read when a process is spawned), the rest at once
  const saved = process.env.NODE_OPTIONS
  const slots: Array<LocalNode | undefined> = new Array(n).fill(undefined)
  const start = async (i: number): Promise<void> => { slots[i] = await net.start({ name: `provider-${i}`, location: 'Osaka', extra: ['--price-cpu-hour', String(PRICE_CPU_HOUR)] }, [submitter.addrs[0]], { timeoutMs: 120_000 }) }
  for (const [k, path] of Object.entries(preload)) {
    process.env.NODE_OPTIONS = `${saved ?? ''} --import tsx --import ${pathToFileURL(join(repoRoot, path)).href}`.trim()
    try { await start(Number(k)) } finally { if (saved === undefined) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = saved }
  }
  await Promise.all(slots.map(async (s, i) => { if (s === undefined) await start(i) }))
  const providers = slots as LocalNode[]
  note('providers up')
  const accounts = await connectedAndStaked(submitter, providers)
  note('connected and staked')
  return { net, submitter, providers, accounts }
}

/**
 * Runs `body` on a paid network of `n` providers (startPaidNetwork); when it fails, prints every
 * node's log tail before the error goes on; stops the network in the end.
 */
/**
 * Waits until every provider is connected to the submitter and has staked (each stakes with its
 * own key when it starts on a local network: redeeming needs it), except those in `unstaked`
 * (started `--no-auto-stake`); returns each node's chain account (lower case), the submitter's too.
 */
export async function connectedAndStaked (submitter: LocalNode, providers: LocalNode[], unstaked: ReadonlySet<LocalNode> = new Set()): Promise<Map<LocalNode, string>> {
  await waitFor('providers connected to the submitter', async () => {
    const { peers } = await submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
    return providers.every(p => peers.some(x => x.peerId === p.peerId)) ? true : undefined
  })
  const accounts = new Map<LocalNode, string>()
  for (const node of [submitter, ...providers]) {
    const w = await waitFor(`${node.spec.name}'s wallet`, async () => {
      const w = await node.api.call<{ account: string, stake?: { gpus: number } }>('GET', '/v1/wallet')
      return node === submitter || unstaked.has(node) || (w.stake?.gpus ?? 0) > 0 ? w : undefined
    })
    accounts.set(node, w.account.toLowerCase())
  }
  return accounts
}

export async function withPaidNetwork (n: number, preload: Record<number, string>, body: (p: PaidNetwork) => Promise<void>): Promise<void> {
  let p: PaidNetwork | undefined
  try {
    p = await startPaidNetwork(n, preload)
    await body(p)
  } catch (err) {
    if (p !== undefined) for (const node of [p.submitter, ...p.providers]) process.stderr.write(`--- ${node.spec.name}\n${p.net.logOf(node).slice(-3000)}\n`)
    throw err
  } finally {
    await p?.net.stop()
  }
}

/**
 * Submits a grid job of Mandelbrot tiles (src/compute/modules/mandelbrot.wasm: a few ms of CPU
 * each, so every receipt bills a non-zero amount) through the submitter's API and waits for its
 * end; returns its id, final status and task count.
 */
export async function runTiles (p: PaidNetwork, extra: Record<string, unknown> = {}): Promise<{ jobId: string, status: Record<string, any>, tasks: number }> {
  const dir = join(p.net.root, `job-${Date.now()}`)
  mkdirSync(dir, { recursive: true })
  const width = 384; const height = 256; const step = 3.0 / width
  const tiles = planTiles(width, height, 64, { x0: -2.2, y0: -height / 2 * step, step, maxIterations: 3000 })
  writeFileSync(join(dir, 'tiles.bin'), Buffer.concat(tiles.map(t => t.input)))
  const manifest = recordsJobManifest('paid-tiles', 'mandelbrot', 'tiles.bin', {
    resources: { cores: 1, memoryMib: 64 },
    task: { timeoutMs: TASK_TIMEOUT_MS, expectedMs: 20, maxAttempts: 6 },
    ...extra
  })
  const { jobId } = await p.submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 60_000 })
  const status = await waitFor(`job ${jobId} to end`, async () => {
    const s = await p.submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 })
    return s.status === 'running' ? undefined : s
  }, 240_000)
  note(`job ${String(status.status)}`)
  return { jobId, status, tasks: tiles.length }
}

export interface EarningsRow { chainJobId: string, payer: string, signed: string, redeemed: string, pending: string, note?: string }

/** Each provider redeems through its own node until nothing of `chainJobId` is pending; its own earnings row. */
export async function redeemAll (p: PaidNetwork, chainJobId: string, who: LocalNode[] = p.providers): Promise<Map<LocalNode, EarningsRow | undefined>> {
  const out = new Map<LocalNode, EarningsRow | undefined>()
  const { rpc } = await p.net.chain()
  await Promise.all(who.map(async node => {
    let last = ''
    const row = await waitFor(`${node.spec.name} to redeem`, async () => {
      await node.api.call('POST', '/v1/chain/redeem', undefined, { timeoutMs: 60_000 }).catch(() => {})
      const e = await node.api.call<{ jobs: EarningsRow[], inFlight: number }>('GET', '/v1/earnings', undefined, { timeoutMs: 30_000 })
      const r = e.jobs.find(j => j.chainJobId.toLowerCase() === chainJobId.toLowerCase())
      last = JSON.stringify({ row: r, inFlight: e.inFlight })
      if (r === undefined) return { none: true as const }
      if (BigInt(r.pending) === 0n && e.inFlight === 0) return r
      // dust: the provider's policy never spends more gas than it would get (redeem-policy.ts); it stays claimable
      if (e.inFlight === 0 && (r.note ?? '').startsWith('not worth redeeming')) return r
      // anvil mines only when a transaction comes: a redeem waiting for a confirmation block gets one
      await jsonRpc(rpc, 'evm_mine').catch(() => {})
      return undefined
    }).catch((err: Error) => { throw new Error(`${err.message}; last earnings: ${last}`) })
    out.set(node, 'none' in row ? undefined : row)
  }))
  note('redeemed')
  return out
}

async function jsonRpc (url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  const j = await r.json() as { result?: unknown, error?: { message: string } }
  if (j.error !== undefined) throw new Error(`${method}: ${j.error.message}`)
  return j.result
}

/** redeemed(jobId, provider) read straight from the contract over JSON-RPC. */
export async function redeemedOnChain (p: PaidNetwork, contract: string, chainJobId: string, provider: string): Promise<bigint> {
  const { rpc } = await p.net.chain()
  const data = `0x${selector('redeemed(bytes32,address)')}${chainJobId.slice(2).padStart(64, '0')}${provider.slice(2).toLowerCase().padStart(64, '0')}`
  const r = await fetch(rpc, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_call', params: [{ to: contract, data }, 'latest'] }) })
  const j = await r.json() as { result?: string, error?: { message: string } }
  if (j.result === undefined) throw new Error(`eth_call redeemed: ${j.error?.message ?? 'no result'}`)
  return BigInt(j.result)
}

function selector (sig: string): string {
  return keccak256(toHex(sig)).slice(2, 10)
}
