// Usage receipts: what a provider metered for one task, priced and signed with its Ed25519 key.
// The receipt id is derived from the receipt's own content, so a receipt is its own dedup key.
import { sha256 } from '@noble/hashes/sha2.js'
import { dbc } from '../../wire/gen/wire.js'
import { bytesEqual, ed25519KeyFromPeerIdBytes, ed25519PublicKey, peerIdBytesFromEd25519Key, signBytes, verifyBytes } from '../identity/index.js'
import { chargeUnits, TOKEN_DECIMALS, type HourlyPrices, type MeteredUsage } from '../compute/pricing.js'

type UsageReceipt = dbc.receipt.v1.UsageReceipt
type SignedReceipt = dbc.receipt.v1.SignedReceipt

export interface ReceiptInput {
  jobId: Uint8Array
  taskId: Uint8Array
  /** Provider peer id bytes (identity multihash of its Ed25519 key). */
  provider: Uint8Array
  consumer: Uint8Array
  usage: MeteredUsage
  prices: HourlyPrices
  startedAt: number
  finishedAt: number
  outputHash: Uint8Array
  payoutAddress?: string
  /** 65-byte PayoutBinding by the payout key (training rounds: no offer carries it; core/settlement/payout-binding.ts). */
  payoutBinding?: Uint8Array
  decimals?: number
  /** How usage is rounded into the amount (core/compute/pricing.ts; agreedPricingVersion of the submitter's; absent: 0). */
  pricingVersion?: number
  /** The SHA-256 of the receipt id (default @noble's; runtimes pass node:crypto's: sans-IO core imports no node: module). */
  sha256?: Hasher
}

/** A SHA-256 implementation (bytes in, 32-byte digest out). */
export type Hasher = (bytes: Uint8Array) => Uint8Array

const RECEIPT_ID_BYTES = 16

/** Builds the receipt with its amount and content-derived id. */
export function buildReceipt (input: ReceiptInput): UsageReceipt {
  return buildEncodedReceipt(input).receipt
}

/**
 * buildReceipt, with the receipt's encoding (what signReceipt signs and a SignedReceipt carries):
 * the id's field (receipt_id = 1, the first one protobuf writes) before the encoding the id was
 * hashed from, so the receipt is encoded once, not twice. The bytes are the encoder's own (a test
 * holds them equal to UsageReceipt.encode of the receipt), in a buffer of their own.
 */
export function buildEncodedReceipt (input: ReceiptInput): { receipt: UsageReceipt, bytes: Uint8Array } {
  const amount = chargeUnits({ ...input.usage, pricingVersion: input.pricingVersion }, input.prices, input.decimals ?? TOKEN_DECIMALS)
  const r = dbc.receipt.v1.UsageReceipt.create({
    jobId: input.jobId,
    taskId: input.taskId,
    provider: input.provider,
    consumer: input.consumer,
    wallMs: input.usage.wallMs,
    cpuMs: input.usage.cpuMs,
    gpuSeconds: input.usage.gpuSeconds,
    bytesIn: input.usage.bytesIn,
    bytesOut: input.usage.bytesOut,
    priceGpuHour: input.prices.priceGpuHour,
    priceCpuHour: input.prices.priceCpuHour,
    amount: amount.toString(),
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    outputHash: input.outputHash,
    payoutAddress: input.payoutAddress ?? '',
    ...(input.pricingVersion !== undefined && input.pricingVersion > 0 ? { pricingVersion: input.pricingVersion } : {}),
    ...(input.payoutBinding !== undefined && input.payoutBinding.length > 0 ? { payoutBinding: input.payoutBinding } : {})
  })
  const rest = dbc.receipt.v1.UsageReceipt.encode(r).finish()
  r.receiptId = (input.sha256 ?? sha256)(rest).subarray(0, RECEIPT_ID_BYTES)
  // field 1, wire type 2 (tag 10), length 16 (one varint byte), the id, then the other fields as encoded
  const bytes = new Uint8Array(2 + RECEIPT_ID_BYTES + rest.length)
  bytes[0] = 10
  bytes[1] = RECEIPT_ID_BYTES
  bytes.set(r.receiptId, 2)
  bytes.set(rest, 2 + RECEIPT_ID_BYTES)
  return { receipt: r, bytes }
}

/** Signs a message with the provider's Ed25519 key (deterministic: any implementation gives the same bytes). */
export type Ed25519Signer = (message: Uint8Array) => Uint8Array

/**
 * Signs the encoded receipt. With a secret key, the key must belong to `receipt.provider`; a
 * signer function (e.g. a native one on the hot path) is trusted to hold the provider's key.
 */
export function signReceipt (receipt: UsageReceipt, key: Uint8Array | Ed25519Signer, encoded?: Uint8Array): SignedReceipt {
  if (typeof key !== 'function') {
    const provider = peerIdBytesFromEd25519Key(ed25519PublicKey(key))
    if (!bytesEqual(provider, receipt.provider)) throw new RangeError('the signing key does not belong to the receipt\'s provider')
  }
  // `encoded`: the receipt's encoding from buildEncodedReceipt (in a buffer of its own). Else a
  // copy: protobufjs may hand out a view into a shared Node buffer pool.
  const bytes = encoded ?? new Uint8Array(dbc.receipt.v1.UsageReceipt.encode(receipt).finish())
  const signature = typeof key === 'function' ? key(bytes) : signBytes(key, bytes)
  return dbc.receipt.v1.SignedReceipt.create({ receipt: bytes, signature })
}

/**
 * Most receipts one batch signature covers (SignedReceipt.batch): the results of one lease write.
 * Each receipt carries the whole list (32 bytes an entry), so this bounds what a receipt grows by.
 */
export const RECEIPT_BATCH_MAX = 16
const BATCH_DOMAIN = new TextEncoder().encode('dbc.receipt.v1.Batch\0')

/**
 * What a batch signature signs: a domain tag, then the receipts' SHA-256 in order. The tag's first
 * byte ('d', field 12 with wire type 4) cannot start an encoded UsageReceipt, so a batch signature
 * never passes for one receipt's own signature, nor the reverse.
 */
export function receiptBatchMessage (hashes: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(BATCH_DOMAIN.length + hashes.length * 32)
  out.set(BATCH_DOMAIN, 0)
  hashes.forEach((h, i) => { out.set(h, BATCH_DOMAIN.length + i * 32) })
  return out
}

/** Whether `message` is a batch's (receiptBatchMessage), not one receipt's own bytes. */
export function isReceiptBatchMessage (message: Uint8Array): boolean {
  if (message.length < BATCH_DOMAIN.length) return false
  for (let i = 0; i < BATCH_DOMAIN.length; i++) if (message[i] !== BATCH_DOMAIN[i]) return false
  return true
}

/** How many receipt hashes a batch's message (receiptBatchMessage) lists; 0 for one receipt's own bytes. */
export function receiptBatchCount (message: Uint8Array): number {
  return isReceiptBatchMessage(message) ? Math.floor((message.length - BATCH_DOMAIN.length) / 32) : 0
}

/**
 * Signs several encoded receipts with one signature (the provider's lease writer: the results of
 * one write). Each SignedReceipt carries every receipt's hash, so it checks alone; one receipt
 * (or none) is signed as signReceipt does, with no batch. At most RECEIPT_BATCH_MAX at once.
 */
export function signReceiptBatch (receipts: readonly Uint8Array[], sign: Ed25519Signer, hash: Hasher = sha256): SignedReceipt[] {
  if (receipts.length > RECEIPT_BATCH_MAX) throw new RangeError(`a receipt batch holds at most ${RECEIPT_BATCH_MAX} receipts`)
  if (receipts.length === 1) return [dbc.receipt.v1.SignedReceipt.create({ receipt: receipts[0], signature: sign(receipts[0]) })]
  const hashes = receipts.map(r => hash(r))
  const signature = sign(receiptBatchMessage(hashes))
  return receipts.map(r => dbc.receipt.v1.SignedReceipt.create({ receipt: r, signature, batch: hashes }))
}

/**
 * The bytes a receipt's signature is over: the receipt itself (no batch), else its batch's
 * message once the receipt's own hash is found in it; a reason when the batch is malformed
 * (over RECEIPT_BATCH_MAX, an entry not 32 bytes, the receipt not in it). Hostile input: bounded.
 */
export function receiptSignedBytes (signed: { receipt: Uint8Array, batch?: readonly Uint8Array[] | null }, hash: Hasher = sha256): { ok: true, message: Uint8Array } | { ok: false, reason: string } {
  const batch = signed.batch ?? []
  if (batch.length === 0) return { ok: true, message: signed.receipt }
  if (batch.length > RECEIPT_BATCH_MAX) return { ok: false, reason: `receipt batch of ${batch.length} entries (at most ${RECEIPT_BATCH_MAX})` }
  if (batch.some(h => h.length !== 32)) return { ok: false, reason: 'receipt batch entry is not a 32-byte SHA-256' }
  const own = hash(signed.receipt)
  if (!batch.some(h => bytesEqual(h, own))) return { ok: false, reason: 'receipt is not in the batch its signature covers' }
  return { ok: true, message: receiptBatchMessage(batch) }
}

export type ReceiptCheck =
  | { ok: true, receipt: UsageReceipt }
  | { ok: false, reason: string }

/**
 * Checks a signed receipt: it decodes, is signed by the key inside its provider id (and, when
 * given, that provider is `expectedProvider`), its amount matches its prices and metered usage,
 * and its id matches its content. Never throws.
 */
/** An Ed25519 verifier (publicKey, message, signature); never throws. Runtimes pass node:crypto's (~20x @noble's speed). */
export type VerifyFn = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean

/**
 * Most bytes an encoded SignedReceipt may have where a submitter takes it in (an honest one is
 * ~0.5 KB with every field filled): protobuf skips unknown fields, so a provider could pad receipts
 * it signs itself to a result frame's size and have the submitter keep each one (review s9 H1).
 */
export const MAX_SIGNED_RECEIPT_BYTES = 4096

export function verifyReceipt (signed: SignedReceipt, expectedProvider?: Uint8Array, decimals = TOKEN_DECIMALS, verify: VerifyFn = verifyBytes, hash: Hasher = sha256): ReceiptCheck {
  const parsed = parseSignedReceipt(signed, hash)
  return parsed.ok ? verifyParsedReceipt(parsed, expectedProvider, decimals, verify, hash) : parsed
}

/**
 * A signed receipt decoded, with its provider's key and the bytes its signature is over: what
 * verifyParsedReceipt checks. Only parseSignedReceipt makes one, from the receipt's own bytes, so a
 * caller that reads the provider before the check (the payer's check ahead) and checks later
 * decodes and hashes once. Nothing in it is checked yet.
 */
export interface ParsedReceipt {
  ok: true
  signed: SignedReceipt
  receipt: UsageReceipt
  /** The Ed25519 key inside the provider id (undefined: it carries none). */
  key: Uint8Array | undefined
  signedBytes: ReturnType<typeof receiptSignedBytes>
}

/** Decodes a signed receipt for verifyParsedReceipt; a reason when it does not decode. Never throws. */
export function parseSignedReceipt (signed: SignedReceipt, hash: Hasher = sha256): ParsedReceipt | { ok: false, reason: string } {
  let r: UsageReceipt
  try {
    r = dbc.receipt.v1.UsageReceipt.decode(signed.receipt)
  } catch (err) {
    return { ok: false, reason: `receipt does not decode: ${(err as Error).message}` }
  }
  return { ok: true, signed, receipt: r, key: ed25519KeyFromPeerIdBytes(r.provider), signedBytes: receiptSignedBytes(signed, hash) }
}

/** verifyReceipt's checks, in its order, on a receipt parseSignedReceipt decoded. Never throws. */
export function verifyParsedReceipt (parsed: ParsedReceipt, expectedProvider?: Uint8Array, decimals = TOKEN_DECIMALS, verify: VerifyFn = verifyBytes, hash: Hasher = sha256): ReceiptCheck {
  const { signed, receipt: r, key, signedBytes } = parsed
  if (expectedProvider !== undefined && !bytesEqual(r.provider, expectedProvider)) return { ok: false, reason: 'receipt names another provider' }
  if (key === undefined) return { ok: false, reason: 'provider id carries no Ed25519 key' }
  if (!signedBytes.ok) return signedBytes
  if (!verify(key, signedBytes.message, signed.signature)) return { ok: false, reason: 'signature does not verify against the provider key' }
  let expected: bigint
  try {
    expected = chargeUnits({ gpuSeconds: r.gpuSeconds, cpuMs: r.cpuMs, pricingVersion: r.pricingVersion }, { priceGpuHour: r.priceGpuHour, priceCpuHour: r.priceCpuHour }, decimals)
  } catch (err) {
    return { ok: false, reason: `receipt usage or prices are invalid: ${(err as Error).message}` }
  }
  if (r.amount !== expected.toString()) return { ok: false, reason: `amount ${r.amount} does not match usage x prices (${expected.toString()})` }
  const id = r.receiptId
  // The id was hashed over the receipt without the id field (not even an empty one): the decoded
  // fields re-encoded (a shallow copy: a decoded message's fields are its own properties, what
  // encode writes; absent ones stay absent), so a non-canonical encoding does not pass
  const copy: Partial<UsageReceipt> = { ...r }
  delete copy.receiptId
  const want = hash(dbc.receipt.v1.UsageReceipt.encode(copy as UsageReceipt).finish()).subarray(0, RECEIPT_ID_BYTES)
  if (!bytesEqual(id, want)) return { ok: false, reason: 'receipt id does not match its content' }
  return { ok: true, receipt: r }
}
