// The lease stream's writer (src/net/lease-writer.ts): frames written in one turn leave as one
// stream send and read back as the same frames in order; a full stream holds later batches until
// its drain, a writer's signal stops its wait, a stream that breaks or stays full past the drain
// timeout fails the writes, and close sends what is queued first.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { FramedStream } from '../../../src/net/framed.js'
import { CoalescingWriter, LEASE_WRITE_BATCH_BYTES } from '../../../src/net/lease-writer.js'
import { FrameDecoder } from '../../../src/wire/frame.js'
import { FakeStream } from './fake-stream.js'

/** A FakeStream whose send reports "full" while `full`, and whose drain the test triggers. */
class FullStream extends FakeStream {
  full = false
  closedWrite = false
  private drains: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  override send (b: Uint8Array): boolean { super.send(b); this.writableNeedsDrain = this.full; return !this.full }
  override async onDrain (): Promise<void> { await new Promise<void>((resolve, reject) => { this.drains.push({ resolve, reject }) }) }
  /** The stream can take more: its drain event (and onDrain's promise, as libp2p resolves both). */
  drain (): void { this.full = false; this.writableNeedsDrain = false; const d = this.drains; this.drains = []; for (const x of d) x.resolve(); this.dispatchEvent(new Event('drain')) }
  /** A drain event while the stream still cannot take more (a connection-wide drain, @libp2p/utils onMuxerDrain). */
  spuriousDrain (): void { const d = this.drains; this.drains = []; for (const x of d) x.resolve(); this.dispatchEvent(new Event('drain')) }
  breakIt (err: Error): void { const d = this.drains; this.drains = []; for (const x of d) x.reject(err); this.end(err) }
  override async close (): Promise<void> { this.closedWrite = true }
}

const framesOf = (chunks: Uint8Array[]): string[] => {
  const dec = new FrameDecoder({ maxFrameBytes: 1 << 20 })
  return chunks.flatMap(c => dec.push(c, 1000)).map(f => Buffer.from(f as Uint8Array).toString())
}
const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

test('frames written in one turn leave as one send, in order, and decode as the same frames', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream))
  const done = Promise.all(['a', 'bb', 'ccc'].map(async x => await w.write(Buffer.from(x))))
  assert.is(s.sent.length, 0, 'nothing is sent before the turn ends')
  await done
  assert.is(s.sent.length, 1)
  assert.equal(framesOf(s.sent), ['a', 'bb', 'ccc'])
  await w.write(Buffer.from('d'))
  assert.is(s.sent.length, 2)
  assert.is(w.framesWritten, 4)
  assert.is(w.sends, 2)
})

test('a batch at its size limit is sent at once; a frame past it leaves alone, after the queued ones', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream))
  const small = w.write(Buffer.from('x'))
  const big = w.write(new Uint8Array(LEASE_WRITE_BATCH_BYTES).fill(65))
  assert.is(s.sent.length, 2, 'the queued small frame first, then the large one at once')
  await Promise.all([small, big])
  const got = framesOf(s.sent)
  assert.is(got.length, 2)
  assert.is(got[0], 'x')
  assert.is(got[1].length, LEASE_WRITE_BATCH_BYTES)
})

test('a full stream holds later batches until its drain; a signal drops a queued frame, not one sent', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream))
  s.full = true
  let first = false
  const ac1 = new AbortController()
  const p1 = w.write(Buffer.from('one'), { signal: ac1.signal }).then(() => { first = true }, () => {})
  await turn()
  assert.is(s.sent.length, 1)
  assert.not.ok(first, 'the write waits for the drain')
  const ac = new AbortController()
  const p2 = w.write(Buffer.from('two'), { signal: ac.signal })
  const p3 = w.write(Buffer.from('three'))
  await turn()
  assert.is(s.sent.length, 1, 'nothing more is sent while the stream wants a drain')
  ac.abort(new Error('gave up'))
  await p2.then(() => assert.unreachable('the aborted wait resolved'), (err: Error) => assert.match(err.message, 'gave up'))
  ac1.abort(new Error('too late')) // 'one' is with the stream already: its wait stops, its bytes stay
  s.drain()
  await p1
  await p3
  assert.not.ok(first, 'the aborted wait for the sent frame rejected')
  assert.equal(framesOf(s.sent), ['one', 'three'], 'the frame aborted while queued never went out; the sent one did')
  assert.is(w.framesDropped, 1)
})

test('a write aborted in the turn it was queued is dropped from its batch; the others go out in order', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream))
  const ac = new AbortController()
  const a = w.write(Buffer.from('a'))
  const task = w.write(Buffer.from('task'), { signal: ac.signal })
  const c = w.write(Buffer.from('c'))
  ac.abort(new Error('copy cancelled'))
  await task.then(() => assert.unreachable('resolved'), (err: Error) => assert.match(err.message, 'copy cancelled'))
  await Promise.all([a, c])
  assert.equal(framesOf(s.sent), ['a', 'c'])
  assert.is(s.sent.length, 1, 'still one send')
})

test('a stream that breaks while full fails the waiting and the queued writes, and later ones', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream))
  s.full = true
  const p1 = w.write(Buffer.from('one'))
  await turn()
  const p2 = w.write(Buffer.from('two'))
  s.breakIt(new Error('reset'))
  for (const p of [p1, p2]) await p.then(() => assert.unreachable('resolved'), (err: Error) => assert.match(err.message, 'reset'))
  await w.write(Buffer.from('three')).then(() => assert.unreachable('resolved'), (err: Error) => assert.match(err.message, 'reset'))
})

test('a stream left full past the drain timeout fails every write waiting on it, with one timer', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream), { drainTimeoutMs: 50 })
  s.full = true
  const p1 = w.write(Buffer.from('one'))
  await turn()
  const p2 = w.write(Buffer.from('two'))
  for (const p of [p1, p2]) await p.then(() => assert.unreachable('resolved'), (err: Error) => assert.match(err.message, 'read nothing for 50 ms'))
  s.drain() // a drain after the timeout changes nothing
  await w.write(Buffer.from('three')).then(() => assert.unreachable('resolved'), (err: Error) => assert.match(err.message, 'read nothing'))
  assert.is(s.sent.length, 1)
})

test('a drain event while the stream still cannot take more releases nothing, and the stall timeout still fails the writes', async () => {
  // @libp2p/utils dispatches 'drain' on every stream of a connection when the connection drains,
  // whatever the stream's own window (src/net/stream-drain.ts): a writer that trusted it buffered
  // a batch per connection drain for a peer that read nothing
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream), { drainTimeoutMs: 200 })
  s.full = true
  const p1 = w.write(Buffer.from('one'))
  await turn()
  const p2 = w.write(Buffer.from('two'))
  for (let i = 0; i < 5; i++) { s.spuriousDrain(); await turn() }
  assert.is(s.sent.length, 1, 'nothing more sent on drains that left the stream full')
  for (const p of [p1, p2]) await p.then(() => assert.unreachable('resolved'), (err: Error) => assert.match(err.message, 'read nothing for 200 ms'))
  assert.is(s.sent.length, 1)
  // a real drain lets the next batch out
  const s2 = new FullStream()
  const w2 = new CoalescingWriter(new FramedStream(s2 as unknown as Stream), { drainTimeoutMs: 200 })
  s2.full = true
  const q1 = w2.write(Buffer.from('one'))
  await turn()
  const q2 = w2.write(Buffer.from('two'))
  s2.spuriousDrain(); await turn()
  assert.is(s2.sent.length, 1)
  s2.drain()
  await Promise.all([q1, q2])
  assert.equal(framesOf(s2.sent), ['one', 'two'])
})

test('close sends what is queued before closing the stream', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream))
  const p = w.write(Buffer.from('last'))
  await w.close()
  await p
  assert.ok(s.closedWrite)
  assert.equal(framesOf(s.sent), ['last'])
})

test('lingering writes of several turns leave as one send; a write that does not linger sends them next turn; close sends them', async () => {
  const s = new FullStream()
  const w = new CoalescingWriter(new FramedStream(s as unknown as Stream), { lingerMs: 1000 })
  const a = w.write(Buffer.from('r1'), { linger: true })
  await turn()
  await turn()
  const b = w.write(Buffer.from('r2'), { linger: true })
  await turn()
  assert.is(s.sent.length, 0, 'lingering frames wait for more (up to lingerMs)')
  await Promise.all([a, b])
  assert.is(s.sent.length, 1, 'two results of different turns in one send')
  assert.equal(framesOf(s.sent), ['r1', 'r2'])
  // a heartbeat (no linger) does not wait behind a lingering result
  const c = w.write(Buffer.from('r3'), { linger: true })
  const hb = w.write(Buffer.from('hb'))
  await turn()
  assert.is(s.sent.length, 2, 'sent at the next turn, not after lingerMs')
  await Promise.all([c, hb])
  assert.equal(framesOf(s.sent), ['r1', 'r2', 'r3', 'hb'])
  const d = w.write(Buffer.from('r4'), { linger: true })
  await w.close()
  await d
  assert.equal(framesOf(s.sent), ['r1', 'r2', 'r3', 'hb', 'r4'])
  assert.ok(s.closedWrite)
})

test.run()
