// An in-process JobTransport over provider objects (tests, benches, the demo's single
// process): each call goes straight to the provider. `kill(id)` makes a provider behave
// like a kill -9'd process: no more heartbeats or answers, its running tasks never return.
import type { dbc } from '../wire/gen/wire.js'
import { offerView, resultCode, type JobTransport, type LocalProvider, type TransportOffer } from '../core/scheduler/ports.js'
import { toHex } from '../core/identity/index.js'

export type { LocalProvider } from '../core/scheduler/ports.js'

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

  async openLease (provider: string, lease: dbc.task.v1.ILease, opts: { ready?: Promise<unknown> } = {}): Promise<void> {
    await opts.ready
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
    // what the libp2p transport does: a failed result carries a code the submitter can trust
    return r.ok === true ? r : { ...r, ok: false, code: resultCode(r) }
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
