// How the job runner reaches providers. In-process (LocalTransport, tests and benches) and
// over libp2p (sealed task messages) implement the same interface.
import type { dbc } from '../wire/gen/wire.js'
import type { OfferView } from '../core/scheduler/index.js'

/** The job's location preference; a transport that knows where providers are fills `distanceKm`. */
export interface JobLocation { lat?: number, lon?: number, city?: string, maxDistanceKm?: number }

export interface TransportOffer {
  /** What placement needs; `provider` is the transport's id for the provider. */
  view: OfferView
  /** The provider's signed offer as it came. */
  offer: dbc.task.v1.IOffer
}

export interface JobTransport {
  /** Finds candidates (capability index, gossip) and asks the best few for offers. Refusals come back too. */
  requestOffers: (req: dbc.task.v1.ILeaseRequest, opts: { signal?: AbortSignal, exclude?: ReadonlySet<string>, location?: JobLocation }) => Promise<TransportOffer[]>
  /** Hands the provider the lease (signed by us) that authorizes our tasks. */
  openLease: (provider: string, lease: dbc.task.v1.ILease, opts: { signal?: AbortSignal }) => Promise<void>
  /** Sends one task copy and waits for its result (rejects when the provider is unreachable). */
  runTask: (provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal }) => Promise<dbc.task.v1.ITaskResult>
  closeLease?: (provider: string, leaseId: Uint8Array) => void
  /** Hands the provider the payer's latest signed voucher for this job (TaskMessage.voucher). */
  sendVoucher?: (provider: string, voucher: dbc.task.v1.IVoucher, opts: { signal?: AbortSignal }) => Promise<unknown>
  /** Lease heartbeats from providers; returns the unsubscribe function. */
  onHeartbeat: (listener: (hb: { provider: string, leaseId: Uint8Array, at: number }) => void) => () => void
}

/** Offers carry perf scores where 100 is the reference machine (src/compute/benchmark.ts); placement uses 1. */
export const PERF_SCORE_REFERENCE = 100

/** What placement sees of a signed offer. */
export function offerView (offer: dbc.task.v1.IOffer, provider: string, net: { rttMs?: number, bandwidthBytesPerSec?: number, distanceKm?: number } = {}): OfferView {
  const hex = (b?: Uint8Array | null): string => Array.from(b ?? [], x => x.toString(16).padStart(2, '0')).join('')
  return {
    offerId: hex(offer.offerId),
    provider,
    slots: offer.slots ?? 0,
    priceGpuHour: offer.priceGpuHour ?? 0,
    priceCpuHour: offer.priceCpuHour ?? 0,
    perfScore: (offer.perfScore ?? PERF_SCORE_REFERENCE) / PERF_SCORE_REFERENCE,
    expiresAt: offer.expiresAt ?? 0,
    refusal: offer.refusal == null || offer.refusal === '' ? undefined : offer.refusal,
    rttMs: net.rttMs,
    bandwidthBytesPerSec: net.bandwidthBytesPerSec,
    distanceKm: net.distanceKm,
    gpusProbed: offer.gpusProbed === true
  }
}
