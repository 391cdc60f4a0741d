// The payer's receipt signatures checked ahead: a billed receipt's Ed25519 signature is checked
// off the main thread (the suite's verifyAsync: libuv's thread pool) before the payment
// transaction, which then takes it as good only for the very same provider key, message and
// signature bytes. A batch's signature (SignedReceipt.batch) is kept for each receipt it lists.
// And the payment's check of one receipt (checkReceipt).
import { dbc } from '../wire/gen/wire.js'
import { bytesEqual } from '../core/identity/index.js'
import { parseSignedReceipt, receiptBatchCount, verifyParsedReceipt, type ParsedReceipt, type VerifyFn } from '../core/settlement/receipt.js'
import { TOKEN_DECIMALS, type PricedUsage } from '../core/compute/pricing.js'
import { nodeSuite } from '../crypto/suite.js'
import { nodeSha256 } from '../crypto/hash.js'

/** Receipt signatures checked ahead (precheck) and not yet used: at most this many kept (a copy paid twice never uses its entry). */
export const PRECHECKED_MAX = 4096

export class ReceiptSignatures {
  /**
   * Signatures checked good ahead, by the signature's bytes: the provider key and message they
   * were checked against. verify() takes an entry only for the very same key, message and
   * signature bytes, then drops it (a batch's once each receipt it lists used it); anything else
   * is verified there.
   */
  private readonly prechecked = new Map<string, { key: Uint8Array, message: Uint8Array, uses: number }>()
  /** Signature checks running in the thread pool, by signature: at most one each. */
  private readonly verifying = new Map<string, Promise<boolean>>()

  /** Signatures kept for a later verify() (what the payer holds between a check ahead and its payment). */
  get size (): number { return this.prechecked.size }

  /**
   * Checks a signature off the main thread and keeps it when good. A signature already kept, or
   * being checked (a batch's receipts come in together), is not checked again. Never throws.
   */
  async checkAhead (key: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<void> {
    const verifyAsync = nodeSuite.verifyAsync
    if (verifyAsync === undefined || signature.length !== 64) return
    const id = sigId(signature)
    if (this.prechecked.has(id)) return
    // a batch's receipts come in together (one lease write's results, settled in one step): the
    // others wait for the check already running for its signature instead of each running their
    // own (review16b); verify() then finds it kept (or, for other bytes, verifies them itself)
    const running = this.verifying.get(id)
    if (running !== undefined) { await running; return }
    // copies (decoded fields are Buffer views into the input, and a Buffer's slice() is a view too):
    // the entry must hold the bytes that were checked, whatever later happens to the input's
    const k = new Uint8Array(key); const m = new Uint8Array(message); const sig = new Uint8Array(signature)
    const verifying = new Promise<boolean>(resolve => { verifyAsync(k, m, sig, resolve) })
    this.verifying.set(id, verifying)
    let ok: boolean
    try { ok = await verifying } finally { this.verifying.delete(id) }
    if (ok) this.keep(k, m, sig)
  }

  /**
   * An Ed25519 check for the runner's budget (billOf, which must answer at once): verified here, on
   * the caller's thread, and a good signature is kept as checkAhead keeps it, so the payment of the
   * same receipt does not verify it again (checkAhead finds it kept; verify uses it once).
   */
  readonly verifyNow = (key: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
    // a batch's signature already found good (a sibling's bill): not checked again, its uses left for verify()
    const hit = signature.length === 64 ? this.prechecked.get(sigId(signature)) : undefined
    if (hit !== undefined && receiptBatchCount(hit.message) > 0 && bytesEqual(hit.key, key) && bytesEqual(hit.message, message)) return true
    if (!nodeSuite.verify(key, message, signature)) return false
    this.keep(new Uint8Array(key), new Uint8Array(message), new Uint8Array(signature))
    return true
  }

  /**
   * The payment's Ed25519 test: a signature checked ahead for these exact bytes (used once; a
   * batch's, SignedReceipt.batch, kept for its other receipts), else verified here.
   */
  readonly verify = (key: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
    if (signature.length === 64) {
      const id = sigId(signature)
      const hit = this.prechecked.get(id)
      if (hit !== undefined) {
        const same = bytesEqual(hit.key, key) && bytesEqual(hit.message, message)
        // one receipt's entry goes at its use; a batch's stays for the batch's other receipts and
        // goes once each used it (it stayed for the payer's life, which is the daemon's: review16b)
        if (receiptBatchCount(hit.message) === 0 || (same && --hit.uses <= 0)) this.prechecked.delete(id)
        if (same) return true
      }
    }
    if (!nodeSuite.verify(key, message, signature)) return false
    // a batch's signature checked here is kept for the batch's other receipts (this one used it)
    if (receiptBatchCount(message) > 0) this.keep(new Uint8Array(key), new Uint8Array(message), new Uint8Array(signature), 1)
    return true
  }

  /**
   * Keeps a good signature for verify(): one receipt's for its one use, a batch's for each receipt
   * it lists (`used`: those already checked), then it goes; PRECHECKED_MAX bounds them all (a
   * provider's batch may list receipts it never hands in).
   */
  private keep (key: Uint8Array, message: Uint8Array, signature: Uint8Array, used = 0): void {
    const id = sigId(signature)
    if (this.prechecked.has(id)) return
    const uses = Math.max(1, receiptBatchCount(message)) - used
    if (uses <= 0) return
    if (this.prechecked.size >= PRECHECKED_MAX) this.prechecked.delete(this.prechecked.keys().next().value as string)
    this.prechecked.set(id, { key, message, uses })
  }
}

function sigId (signature: Uint8Array): string {
  return Buffer.from(signature.buffer, signature.byteOffset, signature.length).toString('latin1')
}

/**
 * The payment's check of a billed receipt (verifyParsedReceipt's tests, then the job and the task
 * it names): `pre` is the receipt as the payer's precheck decoded it, taken only while the input's
 * bytes still equal the copy it decoded (else they are decoded again), so what is checked is what
 * is recorded. `verify`: the payer's Ed25519 test (ReceiptSignatures.verify).
 */
export function checkReceipt (input: { receipt?: Uint8Array, taskId: Uint8Array }, jobIdBytes: Uint8Array, providerBytes: Uint8Array | undefined, pre: { bytes: Uint8Array, parsed: ParsedReceipt } | undefined, verify: VerifyFn): { ok: true, billed: bigint, usage: PricedUsage, receiptBytes: Uint8Array } | { ok: false, billed: bigint, reason: string } {
  if (input.receipt === undefined) return { ok: false, billed: 0n, reason: 'no receipt came with the result' }
  let parsed = pre !== undefined && bytesEqual(pre.bytes, input.receipt) ? pre.parsed : undefined
  if (parsed === undefined) {
    let signed: dbc.receipt.v1.SignedReceipt
    try { signed = dbc.receipt.v1.SignedReceipt.decode(input.receipt) } catch { return { ok: false, billed: 0n, reason: 'the receipt does not decode' } }
    const p = parseSignedReceipt(signed, nodeSha256)
    if (!p.ok) return { ok: false, billed: 0n, reason: `receipt refused: ${p.reason}` }
    parsed = p
  }
  const v = verifyParsedReceipt(parsed, providerBytes, TOKEN_DECIMALS, verify, nodeSha256)
  if (!v.ok) return { ok: false, billed: 0n, reason: `receipt refused: ${v.reason}` }
  let billed: bigint
  try { billed = BigInt(v.receipt.amount) } catch { return { ok: false, billed: 0n, reason: 'receipt amount is not a whole number' } }
  if (!bytesEqual(v.receipt.jobId, jobIdBytes)) return { ok: false, billed, reason: 'receipt refused: it names another job' }
  if (!bytesEqual(v.receipt.taskId, input.taskId)) return { ok: false, billed, reason: 'receipt refused: it names another task' }
  return { ok: true, billed, usage: { gpuSeconds: v.receipt.gpuSeconds, cpuMs: v.receipt.cpuMs, pricingVersion: v.receipt.pricingVersion }, receiptBytes: parsed.signed.receipt }
}
