// Length-prefixed framing: each frame is an unsigned varint byte length followed by that many
// bytes. The decoder is bounded (a frame longer than `maxFrameBytes` is refused as soon as its
// prefix is read, before any of it is buffered) and never throws: bad input is an error value.
import { Uint8ArrayList } from 'uint8arraylist'
import * as varint from 'uint8-varint'
import { WireError } from '../errors.js'

/** 4 MiB: large enough for task inputs sent inline, small enough to bound memory per stream. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
const MAX_PREFIX_BYTES = 5 // a varint of up to 2^35 - 1; anything longer is malformed

export function encodeFrame (payload: Uint8Array): Uint8Array {
  const n = varint.encodingLength(payload.byteLength)
  const out = new Uint8Array(n + payload.byteLength)
  varint.encode(payload.byteLength, out, 0)
  out.set(payload, n)
  return out
}

/** Encodes the prefix only, so large payloads can be sent without a copy. */
export function encodeFramePrefix (length: number): Uint8Array {
  return varint.encode(length)
}

export type FrameResult = Uint8Array | WireError

/** A frame limit: fixed, or asked at each prefix (it may depend on the peer and change later, e.g. once a lease opens). */
export type FrameLimit = number | (() => number)

export interface FrameDecoderInit {
  maxFrameBytes?: FrameLimit
  /**
   * Called with each announced frame length that passed the limit (and that limit), before any
   * of the frame is buffered: returning an error refuses the frame (and poisons the decoder),
   * e.g. a memory budget.
   */
  admit?: (length: number, limit: number) => WireError | undefined
}

export class FrameDecoder {
  private limit: FrameLimit
  private readonly admit?: (length: number, limit: number) => WireError | undefined
  private readonly buf = new Uint8ArrayList()
  private want = -1 // length of the frame being read, -1 while reading a prefix
  private failed: WireError | undefined
  private stopped = false

  constructor (opts: FrameDecoderInit = {}) {
    this.limit = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.admit = opts.admit
  }

  /** The largest frame accepted now (asked again at every prefix). */
  get maxFrameBytes (): number { return typeof this.limit === 'number' ? this.limit : this.limit() }

  /** Changes the limit for the frames whose prefix is read from now on. */
  setMaxFrameBytes (limit: FrameLimit): void { this.limit = limit }

  /** Length announced by the frame being read; -1 while its prefix is still incomplete (or between frames). */
  get frameLength (): number { return this.want }

  /** Bytes held for an incomplete frame. */
  get buffered (): number { return this.buf.byteLength }

  /** True part-way through a frame (a prefix read, or some of one): ending here truncates it. */
  get midFrame (): boolean { return this.want >= 0 || this.buf.byteLength > 0 }

  /**
   * True when the last push stopped at its `maxFrames` with bytes left undecoded (their prefixes
   * not read yet): a later push, with or without a chunk, goes on from there.
   */
  get held (): boolean { return this.stopped }

  /**
   * Adds bytes (if any) and returns the frames they complete, at most `maxFrames` (the rest stays
   * buffered, undecoded: see `held`). After an error the decoder is poisoned: the stream is out
   * of sync and every later push returns the same error.
   */
  push (chunk?: Uint8Array | Uint8ArrayList, maxFrames = Infinity): FrameResult[] {
    if (this.failed !== undefined) return [this.failed]
    this.stopped = false
    // the common case, nothing buffered: frames are cut from the chunk directly (a list of one
    // array gives that array; of several, one copy, as reading a frame across them would make)
    if (chunk !== undefined && this.want < 0 && this.buf.byteLength === 0) {
      return this.pushArray(chunk instanceof Uint8Array ? chunk : chunk.subarray(), maxFrames)
    }
    if (chunk !== undefined) this.buf.append(chunk)
    const out: FrameResult[] = []
    for (;;) {
      if (this.want < 0) {
        if (out.length >= maxFrames) { this.stopped = this.buf.byteLength > 0; break }
        const prefix = this.readPrefix()
        if (prefix === undefined) break
        if (prefix instanceof WireError) { out.push(this.fail(prefix)); break }
        this.want = prefix
      }
      if (this.buf.byteLength < this.want) break
      const frame = this.buf.subarray(0, this.want)
      this.buf.consume(this.want)
      this.want = -1
      out.push(frame)
    }
    return out
  }

  /**
   * push() on an empty decoder with one array: the same frames, limits and admit calls as the
   * general path, without a Uint8ArrayList; whatever does not make a whole frame (a partial
   * prefix or body, or bytes past `maxFrames`) is buffered for the general path.
   */
  private pushArray (a: Uint8Array, maxFrames: number): FrameResult[] {
    const out: FrameResult[] = []
    let pos = 0
    while (pos < a.length) {
      if (out.length >= maxFrames) { this.stopped = true; break }
      let value = 0
      let i = 0
      let done = false
      const n = Math.min(a.length - pos, MAX_PREFIX_BYTES)
      for (; i < n; i++) {
        const b = a[pos + i]
        value += (b & 0x7f) * 2 ** (7 * i)
        if ((b & 0x80) === 0) { done = true; break }
      }
      if (!done) {
        if (n >= MAX_PREFIX_BYTES) { out.push(this.fail(new WireError('MALFORMED_FRAME', 'frame length prefix is not a valid varint'))); return out }
        break // a prefix cut short: the general path reads it once the rest arrives
      }
      const max = this.maxFrameBytes
      if (value > max) {
        out.push(this.fail(Object.assign(new WireError('FRAME_TOO_LARGE', `frame of ${value} bytes exceeds the limit of ${max} bytes`), { declaredBytes: value })))
        return out
      }
      const refused = this.admit?.(value, max)
      if (refused !== undefined) { out.push(this.fail(refused)); return out }
      pos += i + 1
      if (a.length - pos < value) { this.want = value; break }
      out.push(a.subarray(pos, pos + value))
      pos += value
    }
    if (pos < a.length) this.buf.append(a.subarray(pos))
    return out
  }

  private readPrefix (): number | WireError | undefined {
    const n = Math.min(this.buf.byteLength, MAX_PREFIX_BYTES)
    let value = 0
    for (let i = 0; i < n; i++) {
      const b = this.buf.get(i)
      value += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) {
        const max = this.maxFrameBytes
        if (value > max) {
          return Object.assign(new WireError('FRAME_TOO_LARGE', `frame of ${value} bytes exceeds the limit of ${max} bytes`), { declaredBytes: value })
        }
        const refused = this.admit?.(value, max)
        if (refused !== undefined) return refused
        this.buf.consume(i + 1)
        return value
      }
    }
    if (this.buf.byteLength >= MAX_PREFIX_BYTES) {
      return new WireError('MALFORMED_FRAME', 'frame length prefix is not a valid varint')
    }
    return undefined
  }

  /** Poisons the decoder with `err` and drops what it buffered (a budget refused the stream). */
  fail (err: WireError): WireError {
    this.failed = err
    this.stopped = false
    this.buf.consume(this.buf.byteLength)
    return err
  }
}
