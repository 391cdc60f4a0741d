// An in-process JobTransport over provider objects (tests, benches, the demo's single
// process): each call goes straight to the provider. `kill(id)` makes a provider behave
// like a kill -9'd process: no more heartbeats or answers, its running tasks never return.
import type { dbc } from '../wire/gen/wire.js'
import { offerView, type JobTransport, type TransportOffer } from './transport.js'
import { toHex } from '../core/identity/index.js'
import type { WireError } from '../errors.js'

/** What a provider exposes in process (a ComputePeer adapts to this). */
export interface LocalProvider {
  /** The transport's id for this provider. */
  readonly id: string
  /** `sender`: the peer asking, when the transport authenticated it (an offer may be leased by it only). */
  offer: (req: dbc.task.v1.ILeaseRequest, sender?: Uint8Array) => Promise<dbc.task.v1.IOffer> | dbc.task.v1.IOffer
  openLease: (lease: dbc.task.v1.ILease, sender: Uint8Array) => Promise<void> | void
  /** `opts.charge`: charges the sender for a task no honest submitter sends (the transport's peer score). */
  runTask: (task: dbc.task.v1.ITask, sender: Uint8Array, opts?: { signal?: AbortSignal, charge?: (err: WireError) => void }) => Promise<dbc.task.v1.ITaskResult>
  closeLease?: (leaseId: Uint8Array) => void
  /**
   * Task input bytes `sender` may send now: the most its open leases' requests announced;
   * undefined when it holds no lease here (then only small frames are accepted from it).
   */
  leasedInputBytes?: (sender: Uint8Array) => number | undefined
  /** A payer's voucher for a job this provider works on (TaskMessage.voucher). */
  acceptVoucher?: (voucher: dbc.task.v1.IVoucher, sender: Uint8Array) => Promise<dbc.task.v1.IVoucher> | dbc.task.v1.IVoucher
}

export interface LocalTransportInit {
  /** Peer id bytes of the submitter (the lease holder). */
  sender: Uint8Array
  heartbeatMs?: number
  /** Predicted RTT and bandwidth per provider, for placement. */
  network?: (providerId: string) => { rttMs?: number, bandwidthBytesPerSec?: number, distanceKm?: number }
}

function never (signal?: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
}

export class LocalTransport implements JobTransport {
  private readonly providers = new Map<string, LocalProvider>()
  private readonly dead = new Set<string>()
  private readonly leases = new Map<string, { provider: string, leaseId: Uint8Array }>()
  private readonly listeners = new Set<(hb: { provider: string, leaseId: Uint8Array, at: number }) => void>()
  private timer?: NodeJS.Timeout

  constructor (providers: LocalProvider[], private readonly init: LocalTransportInit) {
    for (const p of providers) this.providers.set(p.id, p)
    this.timer = setInterval(() => { this.beat() }, init.heartbeatMs ?? 200)
    this.timer.unref()
  }

  add (p: LocalProvider): void { this.providers.set(p.id, p); this.dead.delete(p.id) }
  kill (id: string): void { this.dead.add(id) }
  isDead (id: string): boolean { return this.dead.has(id) }
  close (): void { if (this.timer !== undefined) clearInterval(this.timer); this.timer = undefined }

  private beat (): void {
    const at = Date.now()
    for (const l of this.leases.values()) {
      if (this.dead.has(l.provider)) continue
      for (const f of this.listeners) f({ provider: l.provider, leaseId: l.leaseId, at })
    }
  }

  async requestOffers (req: dbc.task.v1.ILeaseRequest, opts: { signal?: AbortSignal, exclude?: ReadonlySet<string> }): Promise<TransportOffer[]> {
    const out: TransportOffer[] = []
    for (const p of this.providers.values()) {
      if (this.dead.has(p.id) || opts.exclude?.has(p.id) === true) continue
      opts.signal?.throwIfAborted()
      const offer = await p.offer(req)
      const net = this.init.network?.(p.id) ?? {}
      out.push({ offer, view: offerView(offer, p.id, { rttMs: net.rttMs ?? 1, bandwidthBytesPerSec: net.bandwidthBytesPerSec ?? 1e9, distanceKm: net.distanceKm }) })
    }
    return out
  }

  async openLease (provider: string, lease: dbc.task.v1.ILease): Promise<void> {
    const p = this.providers.get(provider)
    if (p === undefined || this.dead.has(provider)) throw new Error(`provider ${provider} is unreachable`)
    await p.openLease(lease, this.init.sender)
    this.leases.set(toHex(lease.leaseId ?? new Uint8Array()), { provider, leaseId: lease.leaseId ?? new Uint8Array() })
  }

  async runTask (provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal }): Promise<dbc.task.v1.ITaskResult> {
    const p = this.providers.get(provider)
    if (p === undefined) throw new Error(`provider ${provider} is unknown`)
    if (this.dead.has(provider)) return await never(opts.signal)
    const r = await p.runTask(task, this.init.sender, opts)
    // A provider killed while the task ran never answers.
    if (this.dead.has(provider)) return await never(opts.signal)
    return r
  }

  async sendVoucher (provider: string, voucher: dbc.task.v1.IVoucher): Promise<void> {
    await this.providers.get(provider)?.acceptVoucher?.(voucher, this.init.sender)
  }

  closeLease (provider: string, leaseId: Uint8Array): void {
    this.leases.delete(toHex(leaseId))
    this.providers.get(provider)?.closeLease?.(leaseId)
  }

  onHeartbeat (listener: (hb: { provider: string, leaseId: Uint8Array, at: number }) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}
