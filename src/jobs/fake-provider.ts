// A provider in process for tests, benches and demos until (and beside) the ComputePeer:
// signs offers and usage receipts, admits tasks only under a lease it granted to the lease
// holder, and computes with a plain function. It can be told to lie, fail or be slow.
import { createHash, createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto'
import { dbc } from '../wire/gen/wire.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, toHex } from '../core/identity/index.js'
import { checkTaskUnderLease } from '../core/scheduler/ownership.js'
import { buildReceipt, signReceipt } from '../core/settlement/receipt.js'
import { agreedPricingVersion, PRICING_VERSION } from '../core/compute/pricing.js'
import type { LocalProvider } from './local-transport.js'
import { nodeVerifyByPeerId } from './signing.js'
import { LeaseBook } from './lease-book.js'
import * as varint from 'uint8-varint'

export interface FakeProviderInit {
  secretKey: Uint8Array
  compute: (input: Uint8Array, entry: string) => Uint8Array | Promise<Uint8Array>
  slots?: number
  priceGpuHour?: number
  priceCpuHour?: number
  /** Benchmark score; 100 = the reference machine (as src/compute reports it). */
  perfScore?: number
  /** Returns a wrong (provider-specific) output for every task. */
  liar?: boolean
  /** Extra wall time per task. */
  delayMs?: number
  /** CPU time billed per ms of wall time (default 1): > 1 makes a provider bill more than placement predicted. */
  cpuMsFactor?: number
  /** CPU time billed per task, ms, whatever the wall time (a bill that does not depend on the machine's load). */
  cpuMs?: number
  /** Every n-th task fails. */
  failEvery?: number
  /** Refuses every lease request with this reason. */
  refuse?: string
  /** EVM payout address named in its offers and receipts (payment tests). */
  payoutAddress?: string
  /** The payout key's binding to this peer its offers carry (core/settlement/payout-binding.ts; payment tests). */
  payoutBinding?: Uint8Array
  /** Prices its receipts at this CPU-hour price instead of its offer's (an overcharger). */
  billCpuHour?: number
  /** Pads each receipt it signs with an unknown field of this many bytes (a hostile provider; payment tests). */
  receiptPadBytes?: number
  /** The highest receipt pricing version it knows (default this code's; 0: a provider from before session 14). */
  pricingVersion?: number
  /** Its offers' bundle_max (TaskBundles it claims to run; it runs each task alone: the in-process transport sends no bundles). */
  bundleMax?: number
  now?: () => number
}

const enc = new TextEncoder()
const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url')

/** What a provider signs in an offer: the same bytes as core/compute/offer.ts (submitters verify them). */
export function offerSigningBytes (o: dbc.task.v1.IOffer): Uint8Array {
  return dbc.task.v1.Offer.encode(dbc.task.v1.Offer.create({ ...o, signature: new Uint8Array(0) })).finish()
}

export class FakeProvider implements LocalProvider {
  readonly id: string
  readonly peerId: Uint8Array
  private readonly key: KeyObject
  private readonly leases = new Map<string, dbc.task.v1.ILease>()
  /** The offers it issued (a lease must name one) and the leases it closed. */
  readonly book = new LeaseBook()
  private count = 0
  private offerSeq = 0
  tasksRun = 0
  refusedTasks = 0

  constructor (private readonly init: FakeProviderInit) {
    const pub = ed25519PublicKey(init.secretKey)
    this.peerId = peerIdBytesFromEd25519Key(pub)
    this.id = toHex(this.peerId).slice(-16)
    // node:crypto signs ~20x faster than the pure-JS signer; same Ed25519 signatures.
    this.key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(init.secretKey), x: b64u(pub) }, format: 'jwk' })
  }

  private now (): number { return this.init.now?.() ?? Date.now() }
  private sign (msg: Uint8Array): Uint8Array { return new Uint8Array(nodeSign(null, msg, this.key)) }

  /** `sender`: the authenticated peer asking (over libp2p); else the request's own requester. */
  offer (req: dbc.task.v1.ILeaseRequest, sender?: Uint8Array): dbc.task.v1.IOffer {
    const offerId = enc.encode(`${this.id}:${++this.offerSeq}`)
    const o: dbc.task.v1.IOffer = {
      offerId,
      provider: this.peerId,
      jobId: req.jobId,
      slots: this.init.refuse !== undefined ? 0 : (this.init.slots ?? 4),
      priceGpuHour: this.init.priceGpuHour ?? 0,
      priceCpuHour: this.init.priceCpuHour ?? 0.05,
      minLeaseMs: 0,
      expiresAt: this.now() + 60_000,
      perfScore: this.init.perfScore ?? 100,
      refusal: this.init.refuse ?? '',
      ...(this.init.bundleMax !== undefined ? { bundleMax: this.init.bundleMax } : {}),
      ...(this.init.payoutAddress !== undefined ? { payoutAddress: this.init.payoutAddress } : {}),
      ...(this.init.payoutBinding !== undefined && this.init.refuse === undefined ? { payoutBinding: this.init.payoutBinding } : {})
    }
    const signed = { ...o, signature: this.sign(offerSigningBytes(o)) }
    this.book.issued(signed, sender ?? req.requester, this.now())
    return signed
  }

  openLease (lease: dbc.task.v1.ILease, sender: Uint8Array): void {
    this.book.admit({ lease, sender, self: this.peerId, now: this.now(), verify: nodeVerifyByPeerId })
    this.leases.set(toHex(lease.leaseId ?? new Uint8Array()), lease)
  }

  closeLease (leaseId: Uint8Array): void { this.leases.delete(toHex(leaseId)); this.book.closedLease(leaseId) }

  async runTask (task: dbc.task.v1.ITask, sender: Uint8Array): Promise<dbc.task.v1.ITaskResult> {
    const base = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt }
    const lease = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
    if (lease === undefined) {
      this.refusedTasks++
      // a lease never opened here throws (charged); one closed lately is refused quietly
      return { ...base, ok: false, code: 'LEASE_CLOSED', error: `refused: ${this.book.missingLease(task.leaseId ?? new Uint8Array()).reason}` }
    }
    const admitted = checkTaskUnderLease({ task, lease, sender, now: this.now(), verify: nodeVerifyByPeerId })
    if (!admitted.ok) { this.refusedTasks++; return { ...base, ok: false, code: 'TASK_REFUSED', error: `refused: ${admitted.reason}` } }
    const n = ++this.count
    const started = this.now()
    if (this.init.delayMs !== undefined && this.init.delayMs > 0) await new Promise(resolve => setTimeout(resolve, this.init.delayMs))
    // a real receipt (amount = usage x prices, content-derived id), as src/compute signs them;
    // like a real provider, a failed copy is billed for the time it took
    const receiptFor = (output: Uint8Array, outputHash: Uint8Array): dbc.receipt.v1.SignedReceipt => {
      const finished = this.now()
      const usage = { wallMs: finished - started, cpuMs: this.init.cpuMs ?? (finished - started) * (this.init.cpuMsFactor ?? 1), gpuSeconds: 0, bytesIn: task.input?.length ?? 0, bytesOut: output.length }
      return signReceipt(buildReceipt({
        jobId: task.jobId ?? new Uint8Array(0), taskId: task.taskId ?? new Uint8Array(0), provider: this.peerId, consumer: lease!.holder ?? new Uint8Array(0),
        usage, prices: { priceGpuHour: this.init.priceGpuHour ?? 0, priceCpuHour: this.init.billCpuHour ?? this.init.priceCpuHour ?? 0.05 }, startedAt: started, finishedAt: finished, outputHash,
        ...(this.init.bundleMax !== undefined ? { bundleMax: this.init.bundleMax } : {}),
      ...(this.init.payoutAddress !== undefined ? { payoutAddress: this.init.payoutAddress } : {}),
        pricingVersion: Math.min(agreedPricingVersion(task.pricingVersion), this.init.pricingVersion ?? PRICING_VERSION)
      }), msg => this.sign(msg))
    }
    const pad = this.init.receiptPadBytes
    const signedFor = (output: Uint8Array, outputHash: Uint8Array): dbc.receipt.v1.SignedReceipt => {
      const r = receiptFor(output, outputHash)
      if (pad === undefined) return r
      // field 99, length-delimited: protobuf decoders skip it, so the signature still verifies
      const body = Buffer.concat([r.receipt, Buffer.from([0x9a, 0x06]), varint.encode(pad), Buffer.alloc(pad, 7)])
      return dbc.receipt.v1.SignedReceipt.create({ receipt: body, signature: this.sign(body) })
    }
    if (this.init.failEvery !== undefined && n % this.init.failEvery === 0) return { ...base, ok: false, code: 'TASK_FAILED', error: 'injected failure', receipt: signedFor(new Uint8Array(0), new Uint8Array(32)) }
    let output = await this.init.compute(task.input ?? new Uint8Array(), task.entry ?? '')
    if (this.init.liar === true) output = enc.encode(`wrong from ${this.id}: ${toHex(output).slice(0, 16)}`)
    this.tasksRun++
    const outputHash = new Uint8Array(createHash('sha256').update(output).digest())
    return { ...base, ok: true, output, outputHash, receipt: signedFor(output, outputHash) }
  }
}
