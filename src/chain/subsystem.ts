// The bridge as a daemon subsystem: the `chain` section of the node config, the Bridge's
// lifetime, and control-API routes for `dbc chain status`, `dbc wallet`, `dbc stake GPUS` and
// `dbc job settle JOB`. The daemon adds `new ChainSubsystem(config.chain)` to its subsystems;
// the jobs subsystem hands finished jobs' receipts to `subsystem.bridge.submitReceipts`.
import { z } from 'zod'
import type { Store } from '../store/db.js'
import { ChainError, ConfigError } from '../errors.js'
import { Bridge, type BridgeInit } from './bridge.js'
import type { Address } from './config.js'
import { DBC_CHAIN_ID } from './dev-keys.js'

export const chainSettingsSchema = z.object({
  /** "embedded" (default): an EVM in the process, persisted in DATADIR/chain. "rpc": a node. */
  kind: z.enum(['embedded', 'rpc']).default('embedded'),
  url: z.string().url().optional(),
  chainId: z.number().int().positive().default(DBC_CHAIN_ID),
  /** Hex private key file; default DATADIR/chain/key (created, and funded on the embedded chain). */
  keyFile: z.string().optional(),
  /** Settlement contract address; default: the one recorded for this chain, else deploy one. */
  contract: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'an 0x-prefixed 20-byte hex address').optional(),
  confirmations: z.number().int().min(1).max(64).optional(),
  batchMaxReceipts: z.number().int().min(1).max(5000).default(1000),
  batchMaxAgeMs: z.number().int().min(0).default(30_000),
  tickMs: z.number().int().min(0).default(2000),
  /** Embedded chain only: the job owner stakes 1 GPU for unstaked payees (see BridgeInit). */
  sandboxStake: z.boolean().default(true)
})
export type ChainSettings = z.infer<typeof chainSettingsSchema>

/** Parses the `chain` config section; ConfigError with the offending key when invalid. */
export function parseChainSettings (raw: unknown): ChainSettings {
  const r = chainSettingsSchema.safeParse(raw ?? {})
  if (!r.success) {
    const issue = r.error.issues[0]
    throw new ConfigError(`chain.${issue.path.join('.')}`, issue.message, { hint: 'see the chain section of the config (kind, url, chainId, keyFile, contract)' })
  }
  if (r.data.kind === 'rpc' && r.data.url === undefined) throw new ConfigError('chain.url', 'is required when chain.kind is "rpc"', { hint: 'e.g. chain.url: http://127.0.0.1:8545' })
  return r.data
}

export function bridgeInitFromSettings (s: ChainSettings, deps: { store: Store, dataDir: string }): BridgeInit {
  return {
    store: deps.store,
    dataDir: deps.dataDir,
    chain: s.kind === 'rpc' ? { kind: 'rpc', url: s.url as string, chainId: s.chainId } : { kind: 'embedded', chainId: s.chainId },
    keyFile: s.keyFile,
    contract: s.contract as Address | undefined,
    confirmations: s.confirmations,
    batching: { maxReceipts: s.batchMaxReceipts, maxAgeMs: s.batchMaxAgeMs },
    tickMs: s.tickMs,
    sandboxStake: s.kind === 'embedded' && s.sandboxStake
  }
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
  private readonly settings: ChainSettings

  constructor (settings: unknown = {}) {
    this.settings = parseChainSettings(settings)
  }

  async start (ctx: ChainContext): Promise<void> {
    const bridge = new Bridge(bridgeInitFromSettings(this.settings, { store: ctx.store, dataDir: ctx.config.dataDir }))
    await bridge.start()
    this.bridge = bridge
    const st = await bridge.status()
    if (st.lastError !== undefined) ctx.log?.warn({ code: st.lastError.code, hint: st.lastError.hint }, st.lastError.message)
    else ctx.log?.info({ chainId: st.chainId, contract: st.contract, account: st.account, block: st.block?.toString() }, 'chain bridge ready')
    if (ctx.api !== undefined) registerChainRoutes(ctx.api, () => this.requireBridge())
  }

  async stop (): Promise<void> {
    await this.bridge?.stop()
    this.bridge = undefined
  }

  status (): Record<string, unknown> {
    return { kind: this.settings.kind, chainId: this.settings.chainId, account: this.bridge?.account, contract: this.bridge?.contract }
  }

  private requireBridge (): Bridge {
    if (this.bridge === undefined) throw new ChainError('BRIDGE_STOPPED', 'the chain bridge is not running', { hint: 'start the node (`dbc node start`)' })
    return this.bridge
  }
}

/**
 * Control-API routes (bigints as decimal strings):
 *   GET  /v1/chain/status                    BridgeStatus
 *   GET  /v1/wallet                          BridgeStatus + payouts of this account
 *   GET  /v1/chain/stake-quote?gpus=N        { networkGpus, amount }
 *   POST /v1/chain/stake { gpus, provider? } StakeResult
 *   POST /v1/chain/deposit { jobId, amount, deadline? }  DepositResult (amount in wei)
 *   POST /v1/chain/withdraw                  { txHash, amount }
 *   POST /v1/chain/jobs/:id/settle           SettleResult[]
 *   GET  /v1/chain/payouts?provider=0x…      PayoutsView
 */
export function registerChainRoutes (api: NonNullable<ChainContext['api']>, bridge: () => Bridge): void {
  api.route('GET', '/v1/chain/status', async () => jsonable(await bridge().status()))
  api.route('GET', '/v1/wallet', async () => {
    const b = bridge()
    const status = await b.status()
    const payouts = status.reachable ? await b.payouts().catch(() => undefined) : undefined
    return jsonable({ ...status, payouts })
  })
  api.route('GET', '/v1/chain/stake-quote', async (req) => jsonable(await bridge().stakeQuote(gpuCount(req.query.get('gpus')))))
  api.route('POST', '/v1/chain/stake', async (req) => {
    const body = (req.body ?? {}) as { gpus?: unknown, provider?: string }
    return jsonable(await bridge().stake(gpuCount(body.gpus), { provider: body.provider as Address | undefined }))
  })
  api.route('POST', '/v1/chain/deposit', async (req) => {
    const body = (req.body ?? {}) as { jobId?: string, amount?: string | number, deadline?: number }
    if (typeof body.jobId !== 'string' || body.amount === undefined || !/^\d+$/.test(String(body.amount))) throw new ChainError('BAD_REQUEST', 'deposit needs { jobId, amount } with amount in wei (a whole number)')
    return jsonable(await bridge().deposit(body.jobId, BigInt(body.amount), { deadline: body.deadline }))
  })
  api.route('POST', '/v1/chain/withdraw', async () => jsonable(await bridge().withdraw()))
  api.route('POST', '/v1/chain/jobs/:id/settle', async (req) => jsonable(await bridge().settleNow(req.params.id, { signal: req.signal })))
  api.route('GET', '/v1/chain/payouts', async (req) => jsonable(await bridge().payouts({ provider: (req.query.get('provider') ?? undefined) as Address | undefined })))
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
