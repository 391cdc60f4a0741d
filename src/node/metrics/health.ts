// /healthz and /readyz, answered without a token on the control API's address and on the metrics
// address. Live: the process serves HTTP and the daemon is not stopping. Ready: the node joined
// the network (it has peers, or it is the only node configured: no bootstrap list) and its
// chain answers (a block number read within a few seconds, cached briefly so probes cost little).
import type { Host } from '../../net/host.js'

export interface HealthSources {
  host: Pick<Host, 'getPeers'>
  /** Bootstrap peers configured: a node with none is a network of its own. */
  bootstrapCount: number
  /** Reads the chain's head; undefined when the node runs no chain bridge. */
  chainHead?: () => (() => Promise<bigint>) | undefined
  stopping: () => boolean
  startedAt: number
}

export interface HealthReport { status: 'ok' | 'unavailable', checks: Record<string, { ok: boolean, detail: string }> }

const CHAIN_TIMEOUT_MS = 3000
const CHAIN_CACHE_MS = 2000

export class HealthChecks {
  private chain: { at: number, ok: boolean, detail: string } | undefined
  private asking: Promise<{ ok: boolean, detail: string }> | undefined
  /** The last readiness verdict. */
  lastReady: boolean | undefined

  constructor (private readonly s: HealthSources) {}

  live (): { status: number, body: Record<string, unknown> } {
    const stopping = this.s.stopping()
    return { status: stopping ? 503 : 200, body: { status: stopping ? 'stopping' : 'ok', uptimeMs: Date.now() - this.s.startedAt } }
  }

  async ready (): Promise<{ status: number, body: HealthReport }> {
    const peers = this.s.host.getPeers().length
    const network = peers > 0
      ? { ok: true, detail: `${peers} peer(s) connected` }
      : this.s.bootstrapCount === 0
        ? { ok: true, detail: 'no peers, and none configured: this node is the whole network' }
        : { ok: false, detail: `no peers connected yet (${this.s.bootstrapCount} bootstrap peer(s) configured)` }
    const chain = await this.chainCheck()
    const stopping = this.s.stopping()
    const checks = { network, chain, ...(stopping ? { daemon: { ok: false, detail: 'stopping' } } : {}) }
    const ok = Object.values(checks).every(c => c.ok)
    this.lastReady = ok
    return { status: ok ? 200 : 503, body: { status: ok ? 'ok' : 'unavailable', checks } }
  }

  private async chainCheck (): Promise<{ ok: boolean, detail: string }> {
    const now = Date.now()
    if (this.chain !== undefined && now - this.chain.at < CHAIN_CACHE_MS) return { ok: this.chain.ok, detail: this.chain.detail }
    const head = this.s.chainHead?.()
    if (head === undefined) return { ok: false, detail: 'the chain bridge is not running' }
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer within ${CHAIN_TIMEOUT_MS} ms`)) }, CHAIN_TIMEOUT_MS) })
    this.asking ??= Promise.race([head(), late])
      .then(block => ({ ok: true, detail: `block ${block.toString()}` }), (err: Error) => ({ ok: false, detail: `chain unreachable: ${err.message.split('\n')[0]}` }))
      .finally(() => { clearTimeout(timer); this.asking = undefined })
    const r = await this.asking
    this.chain = { at: Date.now(), ...r }
    return r
  }
}
