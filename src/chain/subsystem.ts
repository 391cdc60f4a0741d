// The bridge as a daemon subsystem: the `chain` section of the node config, the Bridge's
// lifetime, and control-API routes for `dbc chain status`, `dbc wallet`, `dbc stake GPUS` and
// `dbc earnings`, `dbc job settle JOB`. The daemon adds `new ChainSubsystem(config.chain)` to its subsystems;
// the jobs side signs vouchers (`bridge.signVoucher`) and hands received ones to `acceptVoucher`.
import type { Store } from '../store/db.js'
import { ChainError } from '../errors.js'
import { Bridge } from './bridge.js'
import { chainJobKey, escrowIdOf, jobHashOf } from './job-id.js'
import type { Address, Hex } from './config.js'
import { autoStake } from './auto-stake.js'
import { namedEarnings, type JobOfChainJob } from './earnings.js'
import { bridgeInitFromSettings, describeChain, parseChainSettings, type ChainSettings, type NetworkChoice } from './settings.js'

export { chainSettingsSchema, parseChainSettings, bridgeInitFromSettings, describeChain, type ChainSettings, type NetworkChoice } from './settings.js'

export interface ChainSubsystemOptions extends NetworkChoice {
  /** Stake this node's GPUs with its own key on start (default: the network's, on for local). */
  autoStake?: boolean
  /** GPUs this node offers (declared or probed); a CPU-only provider stakes one unit. */
  gpus?: number
  /** The provider ledger's job id and tasks for a chain job id (the compute subsystem's payment gate): `dbc earnings` names jobs with it. */
  jobOf?: JobOfChainJob
}

/** The slice of the daemon context the chain needs (structural: no import of the daemon). */
export interface ChainContext {
  config: { dataDir: string }
  store: Store
  log?: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void }
  api?: { route: (method: 'GET' | 'POST' | 'DELETE', path: string, handler: (req: { params: Record<string, string>, query: URLSearchParams, body: unknown, signal: AbortSignal }) => unknown) => void }
}

export class ChainSubsystem {
  readonly name = 'chain'
  bridge: Bridge | undefined
  readonly settings: ChainSettings
  private readonly autoStake: boolean
  private readonly gpus: number
  private readonly jobOf: JobOfChainJob | undefined

  constructor (settings: unknown = {}, opts: ChainSubsystemOptions = {}) {
    this.settings = parseChainSettings(settings, opts)
    this.autoStake = opts.autoStake ?? this.settings.autoStakeDefault
    this.gpus = opts.gpus ?? 0
    this.jobOf = opts.jobOf
  }

  async start (ctx: ChainContext): Promise<void> {
    const s = this.settings
    // The sandbox is never silent: say that nobody else can see this chain.
    if (s.network === 'sandbox') ctx.log?.info({ network: 'sandbox', chainId: s.chainId }, `${describeChain(s)}; pass --network to settle on a shared chain`)
    const bridge = new Bridge(bridgeInitFromSettings(s, { store: ctx.store, dataDir: ctx.config.dataDir, stakeGpus: this.autoStake ? this.gpus : 0 }))
    await bridge.start()
    this.bridge = bridge
    const st = await bridge.status()
    if (st.lastError !== undefined) ctx.log?.warn({ code: st.lastError.code, hint: st.lastError.hint }, st.lastError.message)
    else ctx.log?.info({ network: s.network, chainId: st.chainId, contract: st.contract, account: st.account, block: st.block?.toString() }, 'chain bridge ready')
    if (this.autoStake && st.lastError === undefined) {
      // A provider pays its own stake from its own balance; failing here is not fatal (`dbc stake N`).
      try {
        const r = await autoStake(bridge, this.gpus)
        // a CPU-only provider stakes one unit: the contract counts a stake in GPUs, and redeeming vouchers needs one
        const what = r.toppedUpFrom !== undefined
          ? `staked ${r.gpus - r.toppedUpFrom} more GPU(s) with its own key: ${r.toppedUpFrom} were staked, ${r.gpus} are declared (submitters lease GPU work only as far as the stake covers it)`
          : this.gpus >= 1 ? 'staked this provider\'s GPUs with its own key' : 'staked one unit with its own key (a provider with no GPUs stakes one GPU\'s worth: the least the contract takes, and what redeeming vouchers needs)'
        if (!r.already) ctx.log?.info({ gpus: r.gpus, amount: r.amount?.toString(), txHash: r.txHash }, what)
      } catch (err) {
        const e = err instanceof ChainError ? err : new ChainError('CHAIN_ERROR', (err as Error).message)
        ctx.log?.warn({ code: e.code, hint: e.hint }, `auto-stake failed: ${e.message} (stake later with \`dbc stake N\`)`)
      }
    }
    if (ctx.api !== undefined) registerChainRoutes(ctx.api, () => this.requireBridge(), this.jobOf)
  }

  async stop (): Promise<void> {
    await this.bridge?.stop()
    this.bridge = undefined
  }

  status (): Record<string, unknown> {
    return { network: this.settings.network, kind: this.settings.kind, chainId: this.settings.chainId, url: this.settings.url, account: this.bridge?.account, contract: this.bridge?.contract }
  }

  private requireBridge (): Bridge {
    if (this.bridge === undefined) throw new ChainError('BRIDGE_STOPPED', 'the chain bridge is not running', { hint: 'start the node (`dbc node start`)' })
    return this.bridge
  }
}

/**
 * Control-API routes (bigints as decimal strings):
 *   GET  /v1/chain/status                    BridgeStatus
 *   GET  /v1/wallet                          { account, balance, stake, chainId, contract, reachable }
 *   GET  /v1/earnings                        EarningsView (provider: per job signed, redeemed, pending)
 *   GET  /v1/chain/stake-quote?gpus=N        { networkGpus, amount }
 *   POST /v1/chain/stake { gpus, provider? } StakeResult
 *   POST /v1/chain/unstake                   { txHash, amount }
 *   POST /v1/chain/deposit { jobId, amount, deadline?, disputeWindow? }  DepositResult (amount in wei)
 *   GET  /v1/chain/jobs/:id                  JobPaymentView (payer: escrow, signed per provider, redeemed)
 *   POST /v1/chain/jobs/:id/close            { txHash }
 *   POST /v1/chain/jobs/:id/refund           { txHash, amount }
 *   POST /v1/chain/redeem                    RedeemTick (runs the redeem loop now)
 * A job `:id` is a 32-byte chain job id, or a job id of this node (grid: hex, training: text).
 */
export function registerChainRoutes (api: NonNullable<ChainContext['api']>, bridge: () => Bridge, jobOf?: JobOfChainJob): void {
  api.route('GET', '/v1/chain/status', async () => jsonable(await bridge().status()))
  api.route('GET', '/v1/wallet', async () => {
    const s = await bridge().status()
    return jsonable({ account: s.account, balance: s.balance, stake: s.stake, chainId: s.chainId, contract: s.contract, reachable: s.reachable, lastError: s.lastError })
  })
  api.route('GET', '/v1/earnings', async () => jsonable(namedEarnings(await bridge().earnings(), jobOf)))
  api.route('GET', '/v1/chain/stake-quote', async (req) => jsonable(await bridge().stakeQuote(gpuCount(req.query.get('gpus')))))
  api.route('POST', '/v1/chain/stake', async (req) => {
    const body = (req.body ?? {}) as { gpus?: unknown, provider?: string }
    return jsonable(await bridge().stake(gpuCount(body.gpus), { provider: body.provider as Address | undefined }))
  })
  api.route('POST', '/v1/chain/unstake', async () => jsonable(await bridge().unstake()))
  api.route('POST', '/v1/chain/deposit', async (req) => {
    const body = (req.body ?? {}) as { jobId?: string, amount?: string | number, deadline?: number, disputeWindow?: number }
    if (typeof body.jobId !== 'string' || body.amount === undefined || !/^\d+$/.test(String(body.amount))) throw new ChainError('BAD_REQUEST', 'deposit needs { jobId, amount } with amount in wei (a whole number)')
    const b = bridge()
    const { hash } = await resolveJobRef(b, body.jobId)
    if (hash === undefined) throw new ChainError('BAD_REQUEST', `${body.jobId.slice(0, 20)}… is an escrow id: deposit takes the job id (the escrow is keyed by this node's account and the job)`)
    return jsonable(await b.deposit(hash, BigInt(body.amount), { deadline: body.deadline, disputeWindow: body.disputeWindow }))
  })
  api.route('GET', '/v1/chain/jobs/:id', async (req) => {
    const b = bridge()
    return jsonable(await b.jobPayments(await resolveJob(b, req.params.id)))
  })
  api.route('POST', '/v1/chain/jobs/:id/close', async (req) => {
    const b = bridge()
    return jsonable(await b.close(await resolveJob(b, req.params.id)))
  })
  api.route('POST', '/v1/chain/jobs/:id/refund', async (req) => {
    const b = bridge()
    return jsonable(await b.refund(await resolveJob(b, req.params.id)))
  })
  api.route('POST', '/v1/chain/redeem', async (req) => jsonable(await bridge().redeemNow({ signal: req.signal, waitMs: 30_000 })))
}

/**
 * The escrow id for a route's `:id`: a 32-byte hex escrow id as given; else this node's escrow
 * (it is the payer) of the job id as grid jobs derive it (its hex bytes) or training jobs (its
 * text), whichever this node signed vouchers for or deposited on.
 */
export async function resolveJob (b: Bridge, id: string): Promise<Hex> {
  return (await resolveJobRef(b, id)).key
}

/**
 * The job hash (what `deposit` takes) and this node's escrow id for a route's `:id` or a deposit's
 * jobId: the hex-bytes or text reading of the id this node already pays on, else a 32-byte hex
 * id taken as is (an escrow id to read, or the job hash to deposit under). An escrow id of this node's comes back without a hash (a
 * deposit needs the job: the contract keys it by this node's account).
 */
export async function resolveJobRef (b: Bridge, id: string): Promise<{ hash?: Hex, key: Hex }> {
  // a grid job id is 64 hex digits too: this node's own job first, else the id is the chain key
  const raw = /^(0x)?[0-9a-fA-F]{64}$/.test(id) ? chainJobKey(id.startsWith('0x') ? id as Hex : `0x${id}`) : undefined
  const hashes = [...(/^(0x)?([0-9a-fA-F]{2})+$/.test(id) ? [jobHashOf(id.startsWith('0x') ? id : `0x${id}`)] : []), jobHashOf(id.startsWith('0x') ? id.slice(2) : id)]
  const candidates = hashes.map(hash => ({ hash, key: escrowIdOf(b.account, hash) }))
  for (const c of candidates) if (b.vouchers.issued({ chainJobId: c.key }).length > 0) return c
  if (raw !== undefined && b.vouchers.issued({ chainJobId: raw }).length > 0) return { key: raw }
  for (const c of candidates) {
    const esc = await b.escrow(c.key)
    if (esc.payer.toLowerCase() === b.account.toLowerCase()) return c
  }
  if (raw !== undefined) {
    const esc = await b.escrow(raw)
    if (esc.payer.toLowerCase() === b.account.toLowerCase()) return { key: raw }
    // unknown here: an escrow id to read (someone else's), or the job hash of a first deposit
    return { hash: raw, key: raw }
  }
  return candidates[0]
}

function gpuCount (v: unknown): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 20_000) throw new ChainError('BAD_REQUEST', `GPU count must be a whole number from 1 to 20000, not ${String(v)}`)
  return n
}

/** Bigints become decimal strings so results survive JSON. */
export function jsonable (v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return v.map(jsonable)
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString('hex')}`
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonable(x)]))
  return v
}
