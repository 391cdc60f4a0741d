// Review s12 M1: shed() reset the unpausable stream "slowest to finish its frame" judged by
// bytes-left / average rate since the frame began; now by its rate over the last 2-4 s. A hostile provider over WebRTC that sends all but
// the last bytes of its frames at once looks like it finishes "now" for the whole frame deadline, so
// it keeps the cap full, and EVERY honest WebRTC result that starts arriving meanwhile is the one
// reset (its copies lost, run again). Nobody pausable waits, so the N4 progress rule never applies.
// The shipped numbers: cap 64 MiB, 16 MiB frames, minimum rate 256 KiB/s, deadline 10 s + 64 s.
// Fails on bffcd5b (35 of 35 honest results reset, attacker untouched).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setup } from './outbound-fake.js'

const MiB = 1024 * 1024
const FRAME = 16 * MiB

function run (dripBytes: number): { honestLost: number, attackerCut: number, t: number } {
  const { b, clock, track } = setup({ nodeBytes: 64 * MiB, peerBytes: 32 * MiB, unpausableBytes: 64 * MiB, frameDeadlineMs: 10_000, frameMinBytesPerSec: 256 * 1024 } as never)
  const attacker = [track(0, false), track(0, false), track(0, false), track(0, false)]
  // all but the last 4 KiB of a 16 MiB frame, at once (a fast link): 4 x (16 MiB - 4 KiB) held
  for (const a of attacker) a.arrive(FRAME - 4096, FRAME)
  let honestLost = 0
  let t = 0
  for (t = 500; t <= 70_000; t += 500) {
    clock.t = t
    b.sweep(t)
    // the attacker drips dripBytes per second (0: silent) on each stream
    if (t % 1000 === 0 && dripBytes > 0) for (const a of attacker) if (a.failed === undefined) a.arrive(dripBytes, FRAME)
    if (t % 2000 !== 0) continue
    const honest = track(1, false)
    honest.arrive(256 * 1024, FRAME) // an honest 16 MiB result: its first 256 KiB
    if (honest.failed !== undefined) { honestLost++; continue }
    honest.arrive(FRAME - 256 * 1024, FRAME, true)
  }
  return { honestLost, attackerCut: attacker.filter(a => a.failed !== undefined).length, t }
}

test('an attacker holding nearly finished frames (silent) makes every honest unpausable result the one shed', () => {
  const r = run(0)
  assert.ok(r.honestLost <= 1, `honest results reset while the attacker held the cap: ${r.honestLost} of 35 in 70 s; attacker streams cut: ${r.attackerCut}`)
})

test('the same with the attacker dripping 50 B/s', () => {
  const r = run(50)
  assert.ok(r.honestLost <= 1, `honest results reset: ${r.honestLost} of 35 in 70 s; attacker streams cut: ${r.attackerCut}`)
})

test.run()
