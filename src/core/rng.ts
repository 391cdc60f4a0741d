// Seeded pseudo-random numbers for the sans-IO core and the simulator (never Math.random).
// sfc32 seeded through splitmix32: fast, 128-bit state, good statistical quality.

export interface Rng {
  /** Uniform float in [0, 1). */
  next: () => number
  /** Uniform integer in [0, n). */
  int: (n: number) => number
  /** Fills `out` with random bytes and returns it. */
  bytes: (out: Uint8Array) => Uint8Array
}

function splitmix32 (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

export function createRng (seed: number): Rng {
  const sm = splitmix32(seed)
  let a = sm(); let b = sm(); let c = sm(); let d = sm()
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = ((c << 21) | (c >>> 11)) >>> 0
    c = (c + t) >>> 0
    return t
  }
  for (let i = 0; i < 12; i++) u32()
  return {
    next: () => u32() / 4294967296,
    int: (n: number) => Math.floor((u32() / 4294967296) * n),
    bytes: (out: Uint8Array) => {
      for (let i = 0; i < out.length; i++) out[i] = u32() & 0xff
      return out
    }
  }
}
