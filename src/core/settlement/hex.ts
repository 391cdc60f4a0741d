// 0x-prefixed hex for the 32-byte values and addresses that settlement hands to the chain.
import { toHex } from '../identity/index.js'

export type Hex32 = `0x${string}`

export function hex0x (b: Uint8Array): Hex32 {
  return `0x${toHex(b)}`
}

export function bytesFromHex (hex: string): Uint8Array {
  const s = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new RangeError(`not a hex string: ${hex.slice(0, 20)}`)
  const out = new Uint8Array(s.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** Lexicographic byte order (shorter first on a common prefix). */
export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}
