// Trivial task module: input = little-endian f64 numbers.
//   run / sumSquares: output = one f64, the sum of their squares
//   squares:          output = each number squared, as f64
import { allocBytes, outputBuffer } from './abi'

export function alloc (len: i32): usize { return allocBytes(len) }

export function sumSquares (ptr: usize, len: i32): usize {
  const n = len >> 3
  let s: f64 = 0
  for (let i = 0; i < n; i++) {
    const x = load<f64>(ptr + (<usize>i << 3))
    s += x * x
  }
  const out = outputBuffer(8)
  store<f64>(out + 4, s)
  return out
}

export function run (ptr: usize, len: i32): usize { return sumSquares(ptr, len) }

export function squares (ptr: usize, len: i32): usize {
  const n = len >> 3
  const out = outputBuffer(n << 3)
  for (let i = 0; i < n; i++) {
    const x = load<f64>(ptr + (<usize>i << 3))
    store<f64>(out + 4 + (<usize>i << 3), x * x)
  }
  return out
}
