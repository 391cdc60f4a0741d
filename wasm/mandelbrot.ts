// Mandelbrot tile renderer. Input (little-endian, 36 bytes):
//   f64 x0, f64 y0 (complex coordinate of the tile's top-left pixel), f64 step (per pixel),
//   u32 width, u32 height, u32 maxIterations
// Output: width*height RGBA pixels, row by row (points inside the set are black).
import { allocBytes, outputBuffer } from './abi'

// Host import (optional in the ABI): reports the fraction of the tile done.
@external('env', 'progress')
declare function progress (fraction: f64): void

export function alloc (len: i32): usize { return allocBytes(len) }

export function run (ptr: usize, len: i32): usize {
  if (len < 36) unreachable()
  const x0 = load<f64>(ptr)
  const y0 = load<f64>(ptr + 8)
  const step = load<f64>(ptr + 16)
  const width = load<u32>(ptr + 24)
  const height = load<u32>(ptr + 28)
  const maxIter = load<u32>(ptr + 32)
  const out = outputBuffer(<i32>(width * height * 4))
  let p = out + 4
  for (let py: u32 = 0; py < height; py++) {
    const ci = y0 + <f64>py * step
    for (let px: u32 = 0; px < width; px++) {
      const cr = x0 + <f64>px * step
      let zr: f64 = 0
      let zi: f64 = 0
      let i: u32 = 0
      while (i < maxIter && zr * zr + zi * zi <= 4.0) {
        const t = zr * zr - zi * zi + cr
        zi = 2.0 * zr * zi + ci
        zr = t
        i++
      }
      store<u32>(p, colour(i, maxIter))
      p += 4
    }
    if ((py & 15) == 15) progress(<f64>(py + 1) / <f64>height)
  }
  return out
}

// A smooth-ish deterministic palette (integer maths only), packed as RGBA bytes in memory order.
function colour (i: u32, maxIter: u32): u32 {
  if (i >= maxIter) return 0xff000000 // opaque black
  const t = (<u64>i * 255) / <u64>maxIter
  const u = 255 - t
  const cube: u64 = 255 * 255 * 255
  const r = <u32>min<u64>((9 * u * t * t * t) / cube, 255)
  const g = <u32>min<u64>((15 * u * u * t * t) / cube, 255)
  const b = <u32>min<u64>((8 * u * u * u * t) / cube, 255)
  return 0xff000000 | (b << 16) | (g << 8) | r
}
