// The simulator's PRNG: sfc32 seeded through splitmix32 (the same generator as
// src/core/rng.ts) but as a class with methods, so the hot path makes no closure calls
// through an interface. `asCoreRng()` hands the same stream to core machines.
import type { Rng } from '../../src/core/rng.js'

export class SimRandom {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number) {
    let s = seed >>> 0
    const sm = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = sm(); this.b = sm(); this.c = sm(); this.d = sm()
    for (let i = 0; i < 12; i++) this.u32()
  }

  u32 (): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  /** Uniform in [0, 1). */
  next (): number { return this.u32() / 4294967296 }

  /** Uniform integer in [0, n). */
  int (n: number): number { return Math.floor(this.next() * n) }

  /** Exponential with the given mean. */
  exp (mean: number): number { return -mean * Math.log(1 - this.next()) }

  /** Pareto (type I) with scale xm and shape alpha: heavy-tailed session lengths. */
  pareto (xm: number, alpha: number): number { return xm / Math.pow(1 - this.next(), 1 / alpha) }

  /** Weibull with scale lambda and shape k (k < 1 is heavy-tailed). */
  weibull (lambda: number, k: number): number { return lambda * Math.pow(-Math.log(1 - this.next()), 1 / k) }

  /** Standard normal (Box-Muller, one value per call). */
  normal (): number {
    const u = 1 - this.next(); const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** 32 random bytes (a 256-bit id). */
  bytes32 (): Uint8Array {
    const out = new Uint8Array(32)
    for (let i = 0; i < 32; i += 4) { const v = this.u32(); out[i] = v >>> 24; out[i + 1] = (v >>> 16) & 0xff; out[i + 2] = (v >>> 8) & 0xff; out[i + 3] = v & 0xff }
    return out
  }

  /** A fresh generator seeded from this one (independent streams per subsystem). */
  fork (): SimRandom { return new SimRandom(this.u32()) }

  /** The src/core Rng interface over this stream. */
  asCoreRng (): Rng {
    return {
      next: () => this.next(),
      int: (n: number) => this.int(n),
      bytes: (out: Uint8Array) => { for (let i = 0; i < out.length; i++) out[i] = this.u32() & 0xff; return out }
    }
  }
}
