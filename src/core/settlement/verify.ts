// Checks a signed usage receipt before it may be settled: it decodes within bounds, passes the
// compute side's verifyReceipt (provider signature, amount = usage x prices, id = content
// hash), belongs to the job, and names an EVM payout address and a whole amount.
import { dbc } from '../../wire/gen/wire.js'
import { bytesEqual } from '../identity/index.js'
import { isEvmAddress, type BatchReceipt } from './batch.js'
import { verifyReceipt, type VerifyFn } from './receipt.js'
import { TOKEN_DECIMALS } from '../compute/pricing.js'

export const MAX_RECEIPT_BYTES = 4096

export type ReceiptCheck =
  | { ok: true, receipt: dbc.receipt.v1.UsageReceipt, batchReceipt: BatchReceipt }
  | { ok: false, reason: string }

export type SignedReceiptInput = Uint8Array | dbc.receipt.v1.ISignedReceipt

/** `expect.verify`: the Ed25519 verifier to use (default @noble, pure JS; the bridge passes node:crypto's). */
export function checkSignedReceipt (input: SignedReceiptInput, expect: { jobId?: Uint8Array, verify?: VerifyFn } = {}): ReceiptCheck {
  let signed: dbc.receipt.v1.ISignedReceipt
  try {
    if (input instanceof Uint8Array) {
      if (input.length > MAX_RECEIPT_BYTES + 128) return { ok: false, reason: 'signed receipt too large' }
      signed = dbc.receipt.v1.SignedReceipt.decode(input)
    } else {
      signed = input
    }
  } catch {
    return { ok: false, reason: 'signed receipt does not decode' }
  }
  const bytes = signed.receipt
  const sig = signed.signature
  if (bytes == null || bytes.length === 0 || sig == null) return { ok: false, reason: 'signed receipt lacks receipt or signature' }
  if (bytes.length > MAX_RECEIPT_BYTES) return { ok: false, reason: 'receipt too large' }
  const verified = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: bytes, signature: sig }), undefined, TOKEN_DECIMALS, expect.verify)
  if (!verified.ok) return { ok: false, reason: verified.reason }
  const receipt = verified.receipt
  if (receipt.receiptId.length === 0) return { ok: false, reason: 'receipt has no id' }
  if (expect.jobId !== undefined && !bytesEqual(receipt.jobId, expect.jobId)) return { ok: false, reason: 'receipt belongs to another job' }
  if (!isEvmAddress(receipt.payoutAddress)) return { ok: false, reason: 'receipt has no valid payout address' }
  if (!/^\d{1,78}$/.test(receipt.amount)) return { ok: false, reason: 'receipt amount is not a whole number' }
  return {
    ok: true,
    receipt,
    batchReceipt: { receiptId: receipt.receiptId, receiptBytes: bytes, payoutAddress: receipt.payoutAddress, amount: BigInt(receipt.amount) }
  }
}
