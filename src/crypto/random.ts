// Random bytes for the hot path. `crypto.getRandomValues` costs a few microseconds per call
// however few bytes it fills (a call into OpenSSL's DRBG each time); a sealed envelope needs two
// small draws (message id, nonce). The pool fills 4 KiB at once and hands out copies, zeroing
// what it handed out; the bytes are the same CSPRNG's.
const POOL_BYTES = 4096

export class RandomPool {
  private readonly pool = new Uint8Array(POOL_BYTES)
  private offset = POOL_BYTES

  /** Fills `out` with CSPRNG bytes and returns it (the `random` signature the envelope code takes). */
  readonly fill = (out: Uint8Array): Uint8Array => {
    if (out.length > POOL_BYTES / 4) return crypto.getRandomValues(out)
    if (this.offset + out.length > POOL_BYTES) {
      crypto.getRandomValues(this.pool)
      this.offset = 0
    }
    // (byte by byte: a message id or a nonce is 12-16 bytes, less than a view, a set and a fill cost)
    const pool = this.pool
    let o = this.offset
    for (let i = 0; i < out.length; i++, o++) { out[i] = pool[o]; pool[o] = 0 }
    this.offset = o
    return out
  }
}
