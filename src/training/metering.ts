// Per-round metering of a training peer as signed usage receipts (the same receipts grid tasks
// use): one receipt per peer per round, task id "<job>/round/<n>", compute time as CPU time for
// the built-in trainer, or as GPU-seconds when the job runs on GPUs.
import { sha256 } from '@noble/hashes/sha2.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { dbc } from '../wire/gen/wire.js'
import { buildReceipt, signReceipt } from '../core/settlement/receipt.js'
import type { HourlyPrices } from '../core/compute/pricing.js'
import type { RoundMetering } from './worker.js'

export interface ReceiptMeterInit {
  /** The provider's 32-byte Ed25519 secret key (the node identity's `secretKey`). */
  secretKey: Uint8Array
  prices: HourlyPrices
  /** GPUs this peer trains on; 0 meters the compute as CPU time. */
  gpuCount?: number
  /** The provider's EVM payout address (vouchers name it); a function when the chain key loads later. */
  payoutAddress?: string | (() => string | undefined)
  /** Proves the payout address is this peer's (PayoutBinding signed by its key; undefined while not signed yet): the payer refuses an unbound address. */
  payoutBinding?: () => Uint8Array | undefined
  /** Sees each round's billed amount (wei): the member's own ledger of delivered rounds (invite-payment.ts). */
  onBilled?: (m: RoundMetering, units: bigint) => void
}

const utf8 = new TextEncoder()

const payoutOf = (init: ReceiptMeterInit): string | undefined => typeof init.payoutAddress === 'function' ? init.payoutAddress() : init.payoutAddress

export function roundTaskId (jobId: string, round: number): Uint8Array {
  return utf8.encode(`${jobId}/round/${round}`)
}

/** A `meter` hook for TrainingService/TrainingWorker that signs one receipt per round. */
export function createReceiptMeter (init: ReceiptMeterInit): (m: RoundMetering) => Uint8Array {
  const gpuCount = init.gpuCount ?? 0
  return (m) => {
    // GPU-seconds only for rounds a GPU ran (an external trainer on cuda); the built-in trainer is CPU time
    // for the GPUs the job takes (as the member priced its rounds), at most those this peer has
    const gpus = m.usesGpu === true ? (m.gpus !== undefined && m.gpus > 0 ? Math.min(m.gpus, gpuCount > 0 ? gpuCount : m.gpus) : gpuCount) : 0
    const jobId = utf8.encode(m.jobId)
    const taskId = roundTaskId(m.jobId, m.round)
    const receipt = buildReceipt({
      jobId,
      taskId,
      provider: peerIdFromString(m.peer).toMultihash().bytes,
      consumer: peerIdFromString(m.coordinator).toMultihash().bytes,
      usage: {
        wallMs: m.computeMs,
        cpuMs: gpus > 0 ? 0 : m.cpuMs,
        gpuSeconds: gpus * m.computeMs / 1000,
        bytesIn: m.bytesIn,
        bytesOut: m.bytesOut
      },
      prices: init.prices,
      startedAt: m.startedAt,
      finishedAt: m.finishedAt,
      // binds the receipt to this peer's work in this round (samples processed)
      outputHash: sha256(utf8.encode(`${m.jobId}/${m.round}/${m.peer}/${m.samples}`)),
      ...(payoutOf(init) !== undefined ? { payoutAddress: payoutOf(init), payoutBinding: init.payoutBinding?.() } : {})
    })
    const signed = dbc.receipt.v1.SignedReceipt.encode(signReceipt(receipt, init.secretKey)).finish()
    init.onBilled?.(m, BigInt(receipt.amount))
    return signed
  }
}
