// Review s12 L5: past the WebRTC cap, a stream holding more than a slack of decoded, unread frames
// was reset first as one "nobody reads" (uncharged, but a lease stream's reset loses every copy in
// flight on it), judged at the moment of the shed: an honest lease stream whose reader had not yet
// taken the frames one chunk decoded (it does within microtasks) was reset when the slack (1 MiB, a
// guess about libp2p's delivery) was passed. Now a stream is taken for one nobody reads only if it
// still holds them once the event loop has moved on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setup } from './outbound-fake.js'

const MiB = 1024 * 1024
const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

test('an honest reader behind by a chunk of frames (taken within microtasks) is not reset as one nobody reads', async () => {
  const { b, clock, charges, track } = setup({ frameDeadlineMs: 1e9, unpausableBytes: 8 * MiB, peerBytes: 64 * MiB } as never)
  const [other, lease] = [track(1, false), track(0, false)]
  other.arrive(1, 16 * MiB)
  clock.t = 1000
  other.arrive(6 * MiB, 16 * MiB) // fast, 6 MiB of a 16 MiB frame
  // one chunk completes a result and decodes 2 MiB of further small results before the reader takes them
  lease.framesDecoded += 20; lease.held = 2.5 * MiB; lease.meter?.held(lease.held) // 8.5 MiB > 8 MiB
  queueMicrotask(() => { lease.held = 0; lease.meter?.held(0) }) // the lease stream's reader takes them
  await turn()
  assert.is(lease.failed, undefined, 'the honest lease stream is not reset')
  assert.is(other.failed, undefined, 'under the cap once they were read: nobody reset')
  assert.equal(charges, [])
  assert.ok(b.bufferedBytes() <= 8 * MiB)
})

test('a stream that keeps them past the turn is reset first (not charged); the frame in arrival stays', async () => {
  const { b, clock, charges, track } = setup({ frameDeadlineMs: 1e9, unpausableBytes: 8 * MiB, peerBytes: 64 * MiB } as never)
  const [other, stuffed] = [track(1, false), track(0, false)]
  other.arrive(1, 16 * MiB)
  clock.t = 1000
  other.arrive(6 * MiB, 16 * MiB)
  stuffed.framesDecoded += 20; stuffed.held = 2.5 * MiB; stuffed.meter?.held(stuffed.held)
  await turn()
  assert.ok(stuffed.failed !== undefined, 'nobody read them: reset')
  assert.is(other.failed, undefined)
  assert.equal(charges, [])
  assert.ok(b.bufferedBytes() <= 8 * MiB)
})

test.run()
