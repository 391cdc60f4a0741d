// The all-reduce opens the fresh relayed connection ahead of need: once the relayed connection its
// frames take has room for fewer than PREOPEN_NEEDS frames, a new one is dialled while frames still
// fit the old one, so the swap finds it open (session 15: the swap waited on the dial, and the
// rounds meanwhile missed their deadline). One dial per peer at a time; none while another
// relayed connection to the peer has room.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { PREOPEN_NEEDS, type Outbox } from '../../../src/training/streams.js'
import { streamsOn } from './fake-streams-host.js'
import { wireBytes, REPLY_ALLOWANCE_BYTES } from '../../../src/net/routes/index.js'

const RELAY = '12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'
const PEER = '12D3KooWProvProvProvProvProvProvProvProvProvProvProv'
const peer: any = { toString: () => PEER }
const circuit = `/ip4/10.0.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`
const relayed = (bytes: number): any => ({ id: `c${bytes}`, remotePeer: peer, remoteAddr: multiaddr(circuit), direction: 'outbound', timeline: { open: Date.now() }, status: 'open', limits: { bytes: BigInt(bytes) }, streams: [] })

const LEN = 50_000
const NEED = wireBytes(LEN + Math.max(REPLY_ALLOWANCE_BYTES, LEN))

const tick = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

test('a relayed connection with room for few frames: the next one is dialled while frames still fit, once', async () => {
  const used = relayed(NEED * 3)
  const { streams, dials, finish } = streamsOn([used])
  const o: Outbox = { queue: [], queuedBytes: 0, pumping: false, conn: used }
  assert.ok(streams.fits(o, LEN), 'the frame still fits the old connection')
  await tick()
  assert.equal(dials.map(d => d.force), [true], 'a fresh relayed connection is dialled ahead of need')
  assert.ok(streams.fits(o, LEN))
  await tick()
  assert.is(dials.length, 1, 'one dial per peer at a time')
  finish(relayed(4_000_000))
  await tick()
  assert.ok(streams.fits(o, LEN))
  await tick()
  assert.is(dials.length, 1, 'none while another relayed connection to the peer has room')
  streams.close()
})

test('a small relay budget (room for fewer than PREOPEN_NEEDS frames when fresh): one spare, not a dial per frame', async () => {
  const used = relayed(NEED * 2)
  const { streams, dials, finish } = streamsOn([used])
  const o: Outbox = { queue: [], queuedBytes: 0, pumping: false, conn: used }
  assert.ok(streams.fits(o, LEN))
  await tick()
  finish(relayed(NEED * 3))
  await tick()
  for (let i = 0; i < 3; i++) { assert.ok(streams.fits(o, LEN)); await tick() }
  assert.is(dials.length, 1, 'the spare with more room than the connection in use is enough')
  streams.close()
})

test('every relayed connection has the same budget (one relay, room for fewer than PREOPEN_NEEDS frames): the idle spare is enough, no dial per frame (review16c)', async () => {
  // the connection in use is itself fresh: its room plus a frame is more than any fresh spare of
  // the same relay can have, so "more room than the one in use plus a frame" never held and each
  // frame dialled one more relayed connection (each holds a relay circuit for up to 10 min)
  const used = relayed(NEED * 3)
  const { streams, dials, finish } = streamsOn([used])
  const o: Outbox = { queue: [], queuedBytes: 0, pumping: false, conn: used }
  assert.ok(streams.fits(o, LEN))
  await tick()
  finish({ ...relayed(NEED * 3), id: 'spare' })
  await tick()
  for (let i = 0; i < 3; i++) { assert.ok(streams.fits(o, LEN)); await tick() }
  assert.is(dials.length, 1, 'the idle spare (no slices on it) is enough')
  streams.close()
})

test('plenty of room: no dial ahead', async () => {
  const used = relayed(NEED * (PREOPEN_NEEDS + 2))
  const { streams, dials } = streamsOn([used])
  assert.ok(streams.fits({ queue: [], queuedBytes: 0, pumping: false, conn: used }, LEN))
  await tick()
  assert.is(dials.length, 0)
  streams.close()
})

test.run()
