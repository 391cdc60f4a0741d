// A signed voucher as it travels in TaskMessage.voucher (proto/task.proto): fixed-size byte
// fields, the cumulative total as big-endian bytes. fromWire checks every size, so a hostile
// frame yields undefined, never a throw or a half-filled voucher.
import type { dbc } from '../../wire/gen/wire.js'
import type { SignedVoucher } from './voucher.js'

type Hex = `0x${string}`
const toHex = (b: Uint8Array): Hex => `0x${Array.from(b, x => x.toString(16).padStart(2, '0')).join('')}`
const fromHex = (h: string): Uint8Array => Uint8Array.from((h.startsWith('0x') ? h.slice(2) : h).match(/../g) ?? [], x => parseInt(x, 16))

/** uint256 as 32 big-endian bytes (throws RangeError outside 0..2^256-1). */
export function uint256Bytes (v: bigint): Uint8Array {
  if (v < 0n || v >= 1n << 256n) throw new RangeError('not a uint256')
  return fromHex(v.toString(16).padStart(64, '0'))
}

export function voucherToWire (sv: SignedVoucher): dbc.task.v1.IVoucher {
  const v = sv.voucher
  return {
    escrowId: fromHex(v.escrowId),
    provider: fromHex(v.provider),
    cumulative: uint256Bytes(v.cumulative),
    receiptsRoot: fromHex(v.receiptsRoot),
    receiptCount: v.receiptCount,
    signature: fromHex(sv.signature)
  }
}

export function voucherFromWire (w: dbc.task.v1.IVoucher | null | undefined): SignedVoucher | undefined {
  if (w == null) return undefined
  const job = w.escrowId ?? new Uint8Array()
  const provider = w.provider ?? new Uint8Array()
  const cumulative = w.cumulative ?? new Uint8Array()
  const root = w.receiptsRoot ?? new Uint8Array()
  const sig = w.signature ?? new Uint8Array()
  if (job.length !== 32 || provider.length !== 20 || cumulative.length === 0 || cumulative.length > 32 || root.length !== 32 || sig.length !== 65) return undefined
  const count = Number(w.receiptCount ?? 0)
  if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) return undefined
  return {
    voucher: { escrowId: toHex(job), provider: toHex(provider), cumulative: BigInt(toHex(cumulative)), receiptsRoot: toHex(root), receiptCount: count },
    signature: toHex(sig)
  }
}
