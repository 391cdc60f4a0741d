// A workaround for a per-read cost in @libp2p/utils 7.4.1: LengthPrefixedDecoder.decode asks its
// length decoder once more after the last whole frame of every chunk, on an empty buffer, and
// Noise's uint16BEDecode answers by throwing a RangeError, which decode catches as "wait for more
// bytes". Building that error captures a stack trace: ~6 us per Noise read, ~12-15 us of a libp2p
// round trip on this machine (perf: 8-10% of all samples of an echo; session 10 envelope notes).
// Installed once per process (createHost does it): each decoder's length decoder is wrapped on its
// first decode so that an empty buffer throws one RangeError made up front, without a capture;
// decode catches it and stops exactly as before. A partial prefix (1 byte of Noise's 2) still goes
// to the real decoder. Remove when upstream skips the length decoder on an empty buffer.
import { LengthPrefixedDecoder } from '@libp2p/utils'

const EMPTY = new RangeError('no length prefix yet (empty buffer)')
type LengthDecoder = (buf: { byteLength: number }) => number
interface Decoder { lengthDecoder: LengthDecoder, decode: (buf: unknown) => Generator<unknown> }

let installed = false

export function installLengthPrefixFix (): void {
  if (installed) return
  installed = true
  const proto = LengthPrefixedDecoder.prototype as unknown as Decoder
  const decode = proto.decode
  proto.decode = function (this: Decoder, buf: unknown): Generator<unknown> {
    const inner = this.lengthDecoder
    this.lengthDecoder = (b) => { if (b.byteLength === 0) throw EMPTY; return inner(b) }
    // later calls on this decoder go straight to the library's decode
    this.decode = decode
    return decode.call(this, buf)
  }
}
