// The submitter's payer for one job: each billed receipt is checked (signature, job, task,
// provider), bounded (core/settlement/bounds.ts: offer price x min(measured, timeout), the
// manifest's caps), recorded, and the provider's running total is signed as a new cumulative
// EIP-712 voucher (signing is the chain bridge's `signVoucher`). The payment row and the new
// total are written before signing, so a restart signs what was meant, never less, and a
// receipt is never counted twice. A provider caught returning wrong results gets no more.
import { dbc } from '../wire/gen/wire.js'
import { bytesEqual } from '../core/identity/index.js'
import { parseSignedReceipt, type ParsedReceipt } from '../core/settlement/receipt.js'
import { receiptLeaf, MerkleRoots } from '../core/settlement/merkle.js'
import { boundReceipt, type BoundResult } from '../core/settlement/bounds.js'
import { chainJobId } from '../core/settlement/batch.js'
import { TOKEN_DECIMALS, type HourlyPrices } from '../core/compute/pricing.js'
import type { SignedVoucher, Voucher, VoucherDomain } from '../core/settlement/voucher.js'
import { checkPayoutBinding } from '../core/settlement/payout-binding.js'
import { nodeSuite } from '../crypto/suite.js'
import { nodeSha256 } from '../crypto/hash.js'
import type { PaymentStore, VoucherRow } from './payment-store.js'
import { ReceiptSignatures, checkReceipt } from './payer-signatures.js'
import { paymentView, type PaymentView } from './payment-view.js'

export { PRECHECKED_MAX } from './payer-signatures.js'
export { paymentView, type PaymentView } from './payment-view.js'

type Hex = `0x${string}`
type Address = `0x${string}`

/** Signs a voucher with the payer's EVM key (the bridge's signVoucher); returns the 65-byte signature. */
export type VoucherSignFn = (v: Voucher) => Promise<Hex | SignedVoucher>

export interface JobPayerInit {
  /** The job id as the runner and store know it. */
  jobId: string
  /** The job id bytes receipts name (grid: the id's hex bytes; training: its UTF-8). */
  jobIdBytes: Uint8Array
  /** The payer's EVM address (the job's escrow is keyed by it and the job: chainJobId). */
  payerAddress: string
  store: PaymentStore
  sign: VoucherSignFn
  /** Task shape and limits from the manifest. */
  gpus: number
  cores: number
  timeoutMs: number
  maxPricePerHour?: number
  /** budget.total in smallest units (the cap on everything this job pays); a function when it moves (escrow top-ups). */
  budgetTotal?: bigint | (() => bigint | undefined)
  /** After a payment was recorded: what the job committed in all (escrow top-ups watch it). */
  onPaid?: (committed: bigint) => void
  now?: () => number
  /** A signing failure (chain down): logged by the caller; the voucher is signed on the next payment or flush. */
  onError?: (err: Error) => void
  /** A provider refused as a payee (PAYOUT_NOT_BOUND, PAYOUT_SHARED: see addPayee): logged by the caller. */
  onPayeeRefused?: (provider: string, reason: string, code?: string) => void
}

export interface PayInput {
  /** The transport's provider id (registered with `addPayee`). */
  provider: string
  /** Unique per billed copy (e.g. "index:attempt"): a receipt is paid once. */
  key: string
  /** The encoded SignedReceipt the provider returned (undefined: nothing billed). */
  receipt?: Uint8Array
  /** The task id the receipt must name. */
  taskId: Uint8Array
  measuredMs: number
}

export interface PayOutcome {
  /** False when the key was paid before (nothing new recorded). */
  recorded: boolean
  billed: bigint
  payable: bigint
  refused: bigint
  reason?: string
  /** The provider's latest signed voucher after this payment, when there is one. */
  voucher?: SignedVoucher
  payout?: Address
}

const ZERO32: Hex = `0x${'0'.repeat(64)}`
const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`

export class JobPayer {
  readonly chainJobId: Hex
  /** `bound`: the payout address's key signed a binding to this peer (kept in the store: a restart keeps the forfeit rule). */
  private readonly payees = new Map<string, { payout: Address, prices: HourlyPrices, providerBytes?: Uint8Array, forfeited?: string, bound?: boolean }>()
  private readonly leaves = new Map<string, MerkleRoots>()
  private committed: bigint
  /** What this job refused so far (smallest units): with `committed`, the totals the job's summary reports. */
  private refused: bigint
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly now: () => number
  /** Receipt signatures checked ahead (precheck) for the payment transaction's check. */
  private readonly signatures = new ReceiptSignatures()
  /** Each input's receipt as precheck decoded it, from a copy of its bytes (checkReceipt takes it while the bytes are the same). */
  private readonly parsed = new WeakMap<PayInput, { bytes: Uint8Array, parsed: ParsedReceipt }>()

  constructor (private readonly init: JobPayerInit) {
    this.chainJobId = chainJobId(init.jobIdBytes, init.payerAddress)
    this.now = init.now ?? Date.now
    for (const p of init.store.payees(init.jobId)) this.payees.set(p.provider, { payout: p.payout, prices: { priceGpuHour: p.priceGpuHour, priceCpuHour: p.priceCpuHour }, providerBytes: p.providerBytes, forfeited: p.forfeited, bound: p.bound === true })
    const totals = init.store.totals(init.jobId)
    this.committed = totals.committed
    this.refused = totals.refused
  }

  get jobId (): string { return this.init.jobId }

  /** What this job committed to pay so far (smallest units). */
  get committedUnits (): bigint { return this.committed }

  /** What this job refused to pay so far (smallest units). */
  get refusedUnits (): bigint { return this.refused }

  /**
   * A leased provider: where its vouchers go (its offer's payout address) and the prices it signed.
   * With `domain` (the job's chain and contract: every paid grid lease), the offer's `binding` must
   * be the payout key's signature over this peer (core/settlement/payout-binding.ts), else the
   * provider is refused PAYOUT_NOT_BOUND; peers that share an address are then all the key
   * holder's own, so they share its total and its forfeit. Without a domain (training receipts,
   * which carry no binding yet) an address is only a claim: a second peer naming an address that
   * another peer uses in this job is refused PAYOUT_SHARED, as is any mix of bound and unbound
   * peers on one address. Returns whether the provider is a payee.
   */
  addPayee (provider: string, p: { payout: string, prices: HourlyPrices, providerBytes?: Uint8Array, binding?: Uint8Array | null, domain?: VoucherDomain }): boolean {
    const refuse = (code: string, reason: string): false => { this.init.onPayeeRefused?.(provider, reason, code); return false }
    if (!/^0x[0-9a-fA-F]{40}$/.test(p.payout)) return refuse('PAYOUT_NOT_BOUND', `provider ${provider} names no payout address (got ${JSON.stringify(p.payout.slice(0, 44))})`)
    const payout = p.payout.toLowerCase() as Address
    let bound = false
    if (p.domain !== undefined) {
      const c = checkPayoutBinding(p.providerBytes ?? new Uint8Array(), payout, p.binding, p.domain)
      if (!c.ok) return refuse(c.code, `${c.reason} (job ${this.init.jobId})`)
      bound = true
    }
    const others = this.providersOf(payout).filter(id => id !== provider)
    const unbound = others.find(id => this.payees.get(id)?.bound !== true)
    if (others.length > 0 && (!bound || unbound !== undefined)) {
      return refuse('PAYOUT_SHARED', `payout address ${payout} is already used by provider ${unbound ?? others[0]} in job ${this.init.jobId}, and not both peers proved they hold its key`)
    }
    this.payees.set(provider, { payout, prices: p.prices, providerBytes: p.providerBytes, forfeited: this.payees.get(provider)?.forfeited, bound })
    this.init.store.putPayee(this.init.jobId, { provider, payout, providerBytes: p.providerBytes, priceGpuHour: p.prices.priceGpuHour, priceCpuHour: p.prices.priceCpuHour, bound })
    return true
  }

  payoutOf (provider: string): Address | undefined { return this.payees.get(provider)?.payout }

  /** Providers (transport ids) paid through `payout`. */
  providersOf (payout: string): string[] {
    return [...this.payees.entries()].filter(([, p]) => p.payout === payout.toLowerCase()).map(([id]) => id)
  }

  /** Records one billed receipt and signs the provider's new total. Idempotent per `key`. */
  async pay (input: PayInput): Promise<PayOutcome> {
    const p = this.track(this.payOnce(input))
    return await p
  }

  private async payOnce (input: PayInput): Promise<PayOutcome> {
    await this.precheck(input)
    const [o] = this.record([input])
    return o.payout === undefined ? o : { ...o, voucher: await this.signLatest(o.payout) }
  }

  /**
   * Records billed receipts in one store transaction (one commit, one receipts root per payout)
   * and signs nothing: the caller signs each payout's new total when it is due (signLatest, or
   * flush at the end). Idempotent per `key`, like pay.
   */
  payMany (inputs: readonly PayInput[]): PayOutcome[] {
    return inputs.length === 0 ? [] : this.record(inputs)
  }

  /**
   * Checks a billed receipt's Ed25519 signature off the main thread (the suite's verifyAsync: libuv's
   * thread pool) before pay/payMany records it, so the payment transaction does no Ed25519 for it:
   * check() still runs every test of verifyReceipt and takes the signature as good only when this
   * payer checked the same provider key, message and signature bytes here. A receipt that does not
   * decode, names another provider than the payee's or does not verify is left for check() to
   * refuse (as it did before). Never throws.
   */
  async precheck (input: PayInput): Promise<void> {
    if (input.receipt === undefined || nodeSuite.verifyAsync === undefined) return
    // a copy already paid (a restart's catch-up hands in every billed copy) is never checked again
    if (this.init.store.hasPayment(this.init.jobId, input.key)) return
    let parsed: ParsedReceipt
    const bytes = new Uint8Array(input.receipt)
    try {
      const p = parseSignedReceipt(dbc.receipt.v1.SignedReceipt.decode(bytes), nodeSha256)
      if (!p.ok) return
      parsed = p
    } catch { return }
    this.parsed.set(input, { bytes, parsed })
    // a batch-signed receipt: the batch's message (checked once for every receipt of the batch)
    const { signedBytes, key } = parsed
    const expected = this.payees.get(input.provider)?.providerBytes
    if (!signedBytes.ok || key === undefined || (expected !== undefined && !bytesEqual(parsed.receipt.provider, expected))) return
    await this.signatures.checkAhead(key, signedBytes.message, parsed.signed.signature)
  }

  /**
   * An Ed25519 check for the runner's budget (billOf, which must answer at once): verified on the
   * caller's thread, and a good signature is kept as precheck keeps it (payer-signatures.ts).
   */
  get verifyNow (): (key: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean { return this.signatures.verifyNow }

  /** What a payout's intended total is above its last signed voucher (smallest units). */
  unsignedOf (payout: string): bigint {
    const row = this.init.store.voucher(this.init.jobId, payout.toLowerCase())
    if (row === undefined || row.forfeited !== undefined) return 0n
    return row.cumulative > row.signedCumulative ? row.cumulative - row.signedCumulative : 0n
  }

  private record (inputs: readonly PayInput[]): PayOutcome[] {
    const store = this.init.store
    // per payout touched: what this batch adds (its receipts root is built when the total is signed,
    // rootOf: built per batch over all the payout's leaves, its cost per copy grew with the job)
    const added = new Map<Address, bigint>()
    // each payout's voucher row, read once per batch: nothing in the transaction writes it before setIntended
    const rows = new Map<Address, VoucherRow | undefined>()
    const voucherOf = (payout: Address): VoucherRow | undefined => {
      if (!rows.has(payout)) rows.set(payout, store.voucher(this.init.jobId, payout))
      return rows.get(payout)
    }
    const before = this.committed
    const refusedBefore = this.refused
    let outs: PayOutcome[]
    try {
      outs = store.transaction(() => {
        const out = inputs.map(input => this.recordOne(input, added, voucherOf))
        for (const [payout, sum] of added) {
          const leaves = this.leavesOf(payout)
          const cur = voucherOf(payout)
          store.setIntended(this.init.jobId, payout, (cur?.cumulative ?? 0n) + sum, leaves.length, undefined)
        }
        return out
      })
    } catch (err) {
      // rolled back: what this batch added in memory goes too (the leaves reload from the store)
      this.committed = before
      this.refused = refusedBefore
      this.leaves.clear()
      throw err
    }
    // inside the runner's step transaction the rows commit (or not) with it: the top-up waits for
    // that commit, and an outer rollback takes back what this batch added in memory
    const after = this.committed
    if (after > before) {
      store.afterCommit(() => this.init.onPaid?.(after), () => { this.committed = before; this.refused = refusedBefore; this.leaves.clear() })
    } else if (this.refused > refusedBefore) {
      store.afterCommit(() => {}, () => { this.refused = refusedBefore })
    }
    return outs
  }

  /** One receipt inside record's transaction: its payment row, its leaf; the payout's total is set after the batch. */
  private recordOne (input: PayInput, added: Map<Address, bigint>, voucherOf: (payout: Address) => VoucherRow | undefined): PayOutcome {
    const payee = this.payees.get(input.provider)
    const store = this.init.store
    if (payee === undefined) return { recorded: false, billed: 0n, payable: 0n, refused: 0n, reason: `no signed offer with a payout address is known for provider ${input.provider}` }
    if (store.hasPayment(this.init.jobId, input.key)) return { recorded: false, billed: 0n, payable: 0n, refused: 0n, payout: payee.payout }
    const pre = this.parsed.get(input)
    this.parsed.delete(input)
    const checked = checkReceipt(input, this.init.jobIdBytes, payee.providerBytes, pre, this.signatures.verify)
    let bound: BoundResult
    if (!checked.ok) {
      bound = { payable: 0n, refused: checked.billed, limit: 'receipt', reason: checked.reason }
    } else if (payee.forfeited !== undefined) {
      bound = { payable: 0n, refused: checked.billed, limit: 'receipt', reason: `not paid: ${payee.forfeited}` }
    } else if (voucherOf(payee.payout)?.forfeited !== undefined) {
      bound = { payable: 0n, refused: checked.billed, limit: 'receipt', reason: `not paid: ${voucherOf(payee.payout)?.forfeited ?? ''}` }
    } else {
      const m = this.init
      bound = boundReceipt({
        receiptAmount: checked.billed, usage: checked.usage, offer: payee.prices, gpus: m.gpus, cores: m.cores,
        measuredMs: input.measuredMs, timeoutMs: m.timeoutMs, maxPricePerHour: m.maxPricePerHour, budgetTotal: typeof m.budgetTotal === 'function' ? m.budgetTotal() : m.budgetTotal, committed: this.committed, decimals: TOKEN_DECIMALS
      })
    }
    const leaf = checked.ok && bound.payable > 0n ? receiptLeaf(checked.receiptBytes) : undefined
    const leaves = this.leavesOf(payee.payout) // loaded before this payment's row exists
    if (!store.addPayment(this.init.jobId, { receiptKey: input.key, provider: input.provider, payout: payee.payout, billed: checked.billed, payable: bound.payable, refused: bound.refused, limit: bound.limit, reason: bound.reason, leaf, at: this.now(), measuredMs: input.measuredMs })) {
      return { recorded: false, billed: 0n, payable: 0n, refused: 0n, payout: payee.payout }
    }
    this.refused += bound.refused
    if (bound.payable > 0n) {
      leaves.push(leaf!)
      added.set(payee.payout, (added.get(payee.payout) ?? 0n) + bound.payable)
      this.committed += bound.payable
    }
    return { recorded: true, billed: checked.billed, payable: bound.payable, refused: bound.refused, reason: bound.reason, payout: payee.payout }
  }

  /** A payout's receipt leaves in the store's order, with the roots' complete blocks kept (MerkleRoots). */
  private leavesOf (payout: string): MerkleRoots {
    let l = this.leaves.get(payout)
    if (l === undefined) {
      l = new MerkleRoots(this.init.store.payments(this.init.jobId, payout).filter(r => r.payable > 0n && r.leaf !== undefined).map(r => r.leaf as Uint8Array))
      this.leaves.set(payout, l)
    }
    return l
  }

  /**
   * Signs the payout's intended total if it is above the last signed one; returns the latest
   * signed voucher. Nothing new is signed for a forfeited payout.
   */
  async signLatest (payout: string): Promise<SignedVoucher | undefined> {
    const store = this.init.store
    const row = store.voucher(this.init.jobId, payout)
    if (row === undefined) return undefined
    if (row.forfeited !== undefined || (row.signature !== undefined && row.signedCumulative >= row.cumulative && row.signedCount >= row.receiptCount) || row.cumulative === 0n) return this.signedOf(row)
    try {
      const v: Voucher = { escrowId: this.chainJobId, provider: row.payout, cumulative: row.cumulative, receiptsRoot: row.root ?? this.rootOf(row.payout, row.receiptCount), receiptCount: row.receiptCount }
      const got = await this.init.sign(v)
      const signature = typeof got === 'string' ? got : got.signature
      store.setSigned(this.init.jobId, row.payout, v.cumulative, v.receiptCount, v.receiptsRoot, signature)
    } catch (err) {
      this.init.onError?.(err as Error)
    }
    return this.signedOf(store.voucher(this.init.jobId, payout))
  }

  /** The receipts root of a payout's first `count` leaves (the stored payments, in their order: what a restart rebuilds). */
  private rootOf (payout: string, count: number): Hex {
    if (count === 0) return ZERO32
    let leaves = this.leavesOf(payout)
    if (leaves.length !== count) { this.leaves.delete(payout); leaves = this.leavesOf(payout) }
    // fewer receipts than the voucher counts: a root over fewer would be a wrong signature, never sign it
    if (leaves.length < count) throw new Error(`the store holds ${leaves.length} receipts for payout ${payout}, the voucher counts ${count}: not signed`)
    return hex(leaves.root(count))
  }

  private signedOf (row: VoucherRow | undefined): SignedVoucher | undefined {
    if (row?.signature === undefined) return undefined
    return { voucher: { escrowId: this.chainJobId, provider: row.payout, cumulative: row.signedCumulative, receiptsRoot: row.signedRoot ?? ZERO32, receiptCount: row.signedCount }, signature: row.signature }
  }

  /**
   * A provider peer caught returning wrong results: its receipts are refused from now on, and
   * nothing more is signed for each payout address it used in this job (its offers may have named
   * several) when no other peer uses that address, or when every peer on it is bound (all the key
   * holder's own: see addPayee).
   */
  forfeit (provider: string, reason: string): void {
    const payee = this.payees.get(provider)
    if (payee === undefined) return
    payee.forfeited ??= reason
    const store = this.init.store
    store.transaction(() => {
      store.forfeitPayee(this.init.jobId, provider, reason)
      const rows = store.payments(this.init.jobId)
      const used = new Set<string>([payee.payout, ...rows.filter(r => r.provider === provider).map(r => r.payout)])
      for (const payout of used) {
        // every peer on the address: its payee now, or paid through it before it named another
        const sharers = new Set([...this.providersOf(payout), ...rows.filter(r => r.payout === payout).map(r => r.provider)])
        if ([...sharers].every(id => id === provider || this.payees.get(id)?.bound === true)) store.forfeit(this.init.jobId, payout, reason)
      }
    })
  }

  isForfeited (provider: string): boolean {
    return this.payees.get(provider)?.forfeited !== undefined
  }

  /** Signs every total not signed yet (after a restart or a signing failure), once the payments in flight are done; the latest voucher per payout. */
  async flush (): Promise<Array<{ payout: Address, providers: string[], voucher: SignedVoucher }>> {
    await this.idle()
    return await this.signAll()
  }

  /** flush() without waiting for the payments in flight (work held by hold() calls this, idle() waits for it). */
  async signAll (): Promise<Array<{ payout: Address, providers: string[], voucher: SignedVoucher }>> {
    const out: Array<{ payout: Address, providers: string[], voucher: SignedVoucher }> = []
    for (const row of this.init.store.vouchers(this.init.jobId)) {
      const voucher = await this.signLatest(row.payout)
      if (voucher !== undefined) out.push({ payout: row.payout, providers: this.providersOf(row.payout), voucher })
    }
    return out
  }

  /**
   * Work on this job's payments that outlives its runner (the final vouchers on their way to the
   * providers: runner-payments.ts final): idle(), and so flush(), the node's release and its stop,
   * wait for it.
   */
  hold (p: Promise<unknown>): void { this.track(p) }

  /** Waits for payments in flight (and what hold() was given). */
  async idle (): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight])
  }

  /** Totals of this job: paid (signed) per payout, what was refused and why. */
  view (): PaymentView {
    const store = this.init.store
    return paymentView(store, this.init.jobId)
  }

  private track<T> (p: Promise<T>): Promise<T> {
    this.inflight.add(p)
    void p.finally(() => this.inflight.delete(p)).catch(() => {})
    return p
  }
}
