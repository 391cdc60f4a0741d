// RequestChannel (src/net/overlay/channel.ts): one stream per neighbour, requests written in the
// caller's turn once the stream is open, acks matched by key, every callback called exactly once.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PeerId, Stream } from '@libp2p/interface'
import { RequestChannel, type AckCallback } from '../../../src/net/overlay/channel.js'
import { encodeFrame } from '../../../src/wire/frame.js'
import { FakeStream } from '../net/fake-stream.js'

const enc = new TextEncoder(); const dec = new TextDecoder()

/** A host whose dialProtocol hands out fake streams (kept in `streams`). */
function fakeHost (): { host: { dialProtocol: () => Promise<Stream> }, streams: FakeStream[] } {
  const streams: FakeStream[] = []
  return { streams, host: { dialProtocol: async () => { const s = new FakeStream(); streams.push(s); return s as unknown as Stream } } }
}

function channel (host: { dialProtocol: () => Promise<Stream> }): RequestChannel<string> {
  // an ack frame is "key=value"
  return new RequestChannel<string>(host, {} as unknown as PeerId, {
    protocol: '/test/1',
    maxFrameBytes: 1024,
    decodeAck: f => { const [key, ack] = dec.decode(f).split('='); return ack === undefined ? undefined : { key, ack } }
  })
}

/** Records each callback's calls. */
function recorder (): { done: AckCallback<string>, calls: Array<{ err?: Error, ack?: string }> } {
  const calls: Array<{ err?: Error, ack?: string }> = []
  return { calls, done: (err, ack) => { calls.push({ err, ack }) } }
}

const until = async (cond: () => boolean): Promise<void> => { for (let i = 0; i < 2000 && !cond(); i++) await new Promise(resolve => setTimeout(resolve, 5)) }
const ackFrame = (s: string): Uint8Array => encodeFrame(enc.encode(s))

test('the first request opens the stream; once open, a request is on the wire before send returns', async () => {
  const { host, streams } = fakeHost()
  const c = channel(host)
  const a = recorder()
  c.send('a', enc.encode('first'), 10_000, a.done)
  await until(() => streams[0]?.sent.length === 1)
  assert.is(dec.decode(streams[0].sent[0]), dec.decode(encodeFrame(enc.encode('first'))))
  const b = recorder()
  c.send('b', enc.encode('second'), 10_000, b.done)
  assert.is(streams[0].sent.length, 2, 'written in the caller\'s turn')
  assert.is(streams.length, 1, 'one stream for both')
  // acks in any order, each to its own request, once
  streams[0].deliver(ackFrame('b=ok-b'))
  streams[0].deliver(ackFrame('a=ok-a'))
  streams[0].deliver(ackFrame('a=again'))
  await until(() => a.calls.length > 0 && b.calls.length > 0)
  assert.equal(a.calls, [{ err: undefined, ack: 'ok-a' }])
  assert.equal(b.calls, [{ err: undefined, ack: 'ok-b' }])
  assert.is(c.pendingCount, 0)
  // the promise form
  const p = c.request('c', enc.encode('third'), 10_000)
  streams[0].deliver(ackFrame('c=ok-c'))
  assert.is(await p, 'ok-c')
  c.close()
})

test('a second request under a key still waiting is refused; the first keeps waiting', async () => {
  const { host, streams } = fakeHost()
  const c = channel(host)
  const first = recorder(); const second = recorder()
  c.send('k', enc.encode('x'), 10_000, first.done)
  await until(() => streams[0]?.sent.length === 1)
  c.send('k', enc.encode('y'), 10_000, second.done)
  assert.is(second.calls.length, 1)
  assert.match(String(second.calls[0].err?.message), /already waiting/)
  streams[0].deliver(ackFrame('k=ok'))
  await until(() => first.calls.length > 0)
  assert.equal(first.calls, [{ err: undefined, ack: 'ok' }])
  c.close()
})

test('a stream that ends fails every request once; a callback that sends again gets a fresh stream', async () => {
  const { host, streams } = fakeHost()
  const c = channel(host)
  const again = recorder()
  const failed: Error[] = []
  let resent = false
  const onFail: AckCallback<string> = (err) => {
    if (err !== undefined) failed.push(err)
    // sending from inside the failure callback: must not be failed by the same sweep
    if (!resent) { resent = true; c.send('retry', enc.encode('r'), 10_000, again.done) }
  }
  c.send('a', enc.encode('a'), 10_000, onFail)
  await until(() => streams[0]?.sent.length === 1)
  c.send('b', enc.encode('b'), 10_000, onFail)
  streams[0].end(new Error('reset by peer'))
  await until(() => failed.length === 2 && streams.length === 2 && streams[1].sent.length === 1)
  assert.is(failed.length, 2)
  assert.is(again.calls.length, 0, 'the resent request waits on the new stream')
  streams[1].deliver(ackFrame('retry=ok'))
  await until(() => again.calls.length > 0)
  assert.equal(again.calls, [{ err: undefined, ack: 'ok' }])
  c.close()
})

test('silence past the timeout fails the request; close() fails the rest and refuses new ones', async () => {
  const { host, streams } = fakeHost()
  const c = channel(host)
  const slow = recorder(); const open = recorder(); const late = recorder()
  c.send('slow', enc.encode('s'), 1, slow.done)
  c.send('open', enc.encode('o'), 60_000, open.done)
  await until(() => slow.calls.length > 0)
  assert.match(String(slow.calls[0].err?.message), /no ack within 1 ms/)
  assert.is(open.calls.length, 0)
  c.close()
  assert.is(open.calls.length, 1)
  assert.match(String(open.calls[0].err?.message), /channel closed/)
  c.send('late', enc.encode('l'), 1000, late.done)
  assert.match(String(late.calls[0]?.err?.message), /channel closed/)
  assert.ok(streams[0].aborted !== undefined, 'the stream was aborted')
})

test('with accepts, an ack found under its key but not answering the request is dropped; the request keeps waiting', async () => {
  const { host, streams } = fakeHost()
  // keys that collide: the key is the ack's first letter, the request's check its whole text
  const c = new RequestChannel<string, string>(host as never, {} as unknown as PeerId, {
    protocol: '/test/1',
    maxFrameBytes: 1024,
    decodeAck: f => { const text = dec.decode(f); return { key: text[0], ack: text } },
    accepts: (ack, check) => ack === check
  })
  const a = recorder()
  c.send('x', enc.encode('q'), 10_000, a.done, undefined, 'xyz')
  await until(() => streams[0]?.sent.length === 1)
  streams[0].deliver(ackFrame('xab'))
  await new Promise(resolve => setTimeout(resolve, 20))
  assert.is(a.calls.length, 0, 'the colliding ack was dropped')
  assert.is(c.pendingCount, 1)
  streams[0].deliver(ackFrame('xyz'))
  await until(() => a.calls.length > 0)
  assert.equal(a.calls, [{ err: undefined, ack: 'xyz' }])
  // the promise form carries its check too
  const p = c.request('y', enc.encode('r'), 10_000, undefined, 'yes')
  streams[0].deliver(ackFrame('yo'))
  streams[0].deliver(ackFrame('yes'))
  assert.is(await p, 'yes')
  c.close()
})

test.run()
