// A fake FramedStream for OutboundBudget's unit tests (outbound-budget*.test.ts): it receives what
// the test says, and the budget's pause/resume/fail are recorded.
import { peerIdFromString } from '@libp2p/peer-id'
import { OutboundBudget } from '../../../src/net/guard/outbound.js'
import type { FramedStream, ReadMeter } from '../../../src/net/framed.js'
import type { WireError } from '../../../src/errors.js'

export const peers = [
  '12D3KooWF84k1mETNdjWqZDy93UtQCFZ6H6yh8jwKqbfjTSgNSi3',
  '12D3KooWMA3vUA1MM6HcHDAAAnbarqvLQL8j67tN9aC7AmoXi4Kg',
  '12D3KooWKotfq8vQBbZwwFXJRibXBsfjxMqqUgWTKqCHLNuTWpmC'
].map(p => peerIdFromString(p))

/** A stream that receives what the test says: `arrive(n)` adds n bytes of the current frame. */
export class Fake {
  midFrame = false
  framesDecoded = 0
  frameLength = -1
  bytesReceived = 0
  held = 0
  paused = false
  failed: Error | undefined
  meter: ReadMeter | undefined
  watch (m: ReadMeter): void { this.meter = m }
  pauseReading (): void { this.paused = true }
  resumeReading (): void { this.paused = false }
  fail (err: Error): void { this.failed = err; this.meter?.closed() }
  /** n bytes of a frame of `len` arrive (the frame completes when `done`; the reader takes it at once). */
  arrive (n: number, len: number, done = false): void {
    this.bytesReceived += n
    if (done) { this.midFrame = false; this.frameLength = -1; this.framesDecoded++; this.held = 0 } else { this.midFrame = true; this.frameLength = len; this.held += n }
    this.meter?.held(this.held)
  }
}

export interface Setup { b: OutboundBudget, clock: { t: number }, charges: string[], track: (peer: number, pausable?: boolean) => Fake, alive: number[] }

/** Budget 100 B for the node, 1000 B per peer, deadline 1 s + length at 100 B/s, grace 500 ms, unless `over` says otherwise. */
export function setup (over: Partial<ConstructorParameters<typeof OutboundBudget>[0]> = {}): Setup {
  const clock = { t: 0 }
  const charges: string[] = []
  const b = new OutboundBudget({ nodeBytes: 100, peerBytes: 1000, frameDeadlineMs: 1000, frameMinBytesPerSec: 100, exemptGraceMs: 500, now: () => clock.t, charge: (_p, e: WireError) => { charges.push(e.message) }, ...over })
  const alive: number[] = []
  const track = (peer: number, pausable = true): Fake => { const f = new Fake(); const i = alive.push(0) - 1; b.track(f as unknown as FramedStream, peers[peer], '/t', () => { alive[i]++ }, pausable); return f }
  return { b, clock, charges, track, alive }
}
