// A training job's end releases its peers (TrainingTransport.release, from JobRoutes' end: the
// coordinator's session and the member's worker both register their job there, and its end is
// heard whether the job finished, failed or was cancelled): a peer no other running job trains
// with gets its queued frames out, its stream ended, and the relayed connections the all-reduce
// opened to it (spares opened ahead of need, fresh ones) closed where nothing else runs on them.
// Before, nothing called forget at a job's end: each spare held a relay circuit (16 per connection
// at a relay) until the relay's 10 min limit (nat16, review16c).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { OUTBOX_IDLE_MS, type Outbox } from '../../../src/training/streams.js'
import { streamsOn } from './fake-streams-host.js'
import { TrainingTransport } from '../../../src/training/transport.js'
import { JobRoutes } from '../../../src/training/overlay-route.js'
import { wireBytes, REPLY_ALLOWANCE_BYTES } from '../../../src/net/routes/index.js'

const RELAY = '12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'
const P = '12D3KooWLKt6YyPkqmzLk1zpSbu2PH4n3DTS2oNU4YeC2zLbrSFW'
const Q = '12D3KooWGC6TvWhfagifcDCD5PhTNcbJwRSvLvZ64omvLPjq3VwS'
const peer = peerIdFromString(P)
const circuit = `/ip4/10.0.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${P}`
const LEN = 50_000
const NEED = wireBytes(LEN + Math.max(REPLY_ALLOWANCE_BYTES, LEN))

function relayed (id: string, bytes: number, closed: string[], streams: any[] = []): any {
  const c: any = { id, remotePeer: peer, remoteAddr: multiaddr(circuit), direction: 'outbound', timeline: { open: Date.now() }, status: 'open', limits: { bytes: BigInt(bytes) }, streams }
  c.close = async () => { c.status = 'closed'; closed.push(id) }
  return c
}
const tick = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

test('closeOpened closes the spare the all-reduce opened, not a connection it found, nor one another protocol uses', async () => {
  const closed: string[] = []
  const used = relayed('used', NEED * 3, closed)
  const conns: any[] = [used]
  const { streams, finish } = streamsOn(conns)
  const o: Outbox = { queue: [], queuedBytes: 0, pumping: false, conn: used }
  assert.ok(streams.fits(o, LEN)) // few frames of room left: a spare is dialled ahead of need
  await tick()
  finish(relayed('spare', 4_000_000, closed))
  await tick()
  assert.is(streams.closeOpened(P), 1)
  assert.equal(closed, ['spare'], 'the idle spare closes; the connection in use was not opened by the all-reduce')

  // a spare that another protocol's stream runs on stays
  const closed2: string[] = []
  const used2 = relayed('used2', NEED * 3, closed2)
  conns.length = 0; conns.push(used2)
  assert.ok(streams.fits({ queue: [], queuedBytes: 0, pumping: false, conn: used2 }, LEN))
  await tick()
  const onClose: Array<() => void> = []
  const channel: any = { status: 'open', protocol: '/dbc/relay/1.1.0', addEventListener: (ev: string, fn: () => void) => { if (ev === 'close') onClose.push(fn) } }
  finish(relayed('busy-spare', 4_000_000, closed2, [channel]))
  await tick()
  assert.is(streams.closeOpened(P), 0)
  assert.equal(closed2, [], 'an envelope channel (the overlay) on it keeps it open')
  // once that stream ends, nothing runs on it: it closes then (the peer's last stream, likewise)
  channel.status = 'closed'
  for (const fn of onClose) fn()
  assert.equal(closed2, ['busy-spare'])

  // a new job with the peer before that stream ends: the connection is its again, left open
  const closed3: string[] = []
  const used3 = relayed('used3', NEED * 3, closed3)
  conns.length = 0; conns.push(used3)
  assert.ok(streams.fits({ queue: [], queuedBytes: 0, pumping: false, conn: used3 }, LEN))
  await tick()
  const onClose3: Array<() => void> = []
  const peerStream: any = { status: 'open', protocol: '/dbc/allreduce/1.0.0', addEventListener: (ev: string, fn: () => void) => { if (ev === 'close') onClose3.push(fn) } }
  finish(relayed('spare3', 4_000_000, closed3, [peerStream]))
  await tick()
  let released = true
  assert.is(streams.closeOpened(P, () => released), 0)
  released = false // jobRoutes.busy(peer) again
  peerStream.status = 'closed'
  for (const fn of onClose3) fn()
  assert.equal(closed3, [], 'kept for the new job')
  streams.close()
})

test('JobRoutes: a job\'s end names the peers it sent to; a peer in another running job stays busy', () => {
  const ended: Array<{ job: string, peers: string[] }> = []
  const routes = new JobRoutes('self', (job, _c, peers) => { ended.push({ job, peers: [...peers] }) })
  routes.set('j1', 'auto')
  routes.set('j2', 'auto', 'remote')
  routes.notePeer('j1', 'self', P)
  routes.notePeer('j1', 'self', Q)
  routes.notePeer('j2', 'remote', P)
  routes.notePeer('gone', 'self', Q) // not running here: not remembered
  routes.delete('j1')
  assert.equal(ended, [{ job: 'j1', peers: [P, Q] }])
  assert.ok(routes.busy(P), 'P still trains in j2')
  assert.not.ok(routes.busy(Q))
  routes.delete('j2', 'remote')
  assert.not.ok(routes.busy(P))
})

test('TrainingTransport: the job\'s end releases its peers once their frames are out; a peer of another job is kept', async () => {
  const host: any = { peerId: peerIdFromString('12D3KooWJqojwSEKnGTrnicqWedWWxnd6BCofYV93RRpXmNQdrtc'), handle: async () => {}, unhandle: async () => {}, getConnections: () => [], peerStore: { get: async () => ({ addresses: [] }) } }
  const t = new TrainingTransport(host, {})
  const released: string[] = []
  ;(t as any).streams.closeOpened = (p: string) => { released.push(p); return 0 }
  t.jobRoutes.set('j1', 'auto')
  t.jobRoutes.set('j2', 'auto', 'remote')
  // not started: the frames stay queued (a job's last messages still on their way)
  t.send(P, { finish: { jobId: 'j1' } })
  t.send(P, { finish: { jobId: 'j2' } }, undefined, 'remote')
  t.send(Q, { finish: { jobId: 'j1' } })
  await tick()
  t.jobRoutes.delete('j1')
  assert.equal(released, [], 'P trains in j2; Q still has a frame queued')
  const q = (t as any).outboxes.get(Q) as Outbox
  assert.ok(q.releaseWhenDrained === true, 'Q is released once drained')
  q.queue.length = 0; q.queuedBytes = 0
  await (t as any).pump(Q, q) // the pump ends with the queue empty
  assert.equal(released, [Q])
  assert.is((t as any).outboxes.has(Q), false, 'its outbox is dropped')
  const p = (t as any).outboxes.get(P) as Outbox
  p.queue.length = 0; p.queuedBytes = 0
  t.jobRoutes.delete('j2', 'remote')
  assert.equal(released, [Q, P], 'the last job with P ended (a remote coordinator\'s, this node a member)')
})

test('TrainingTransport: outboxes of peers no job here trains with are released once idle (a refusal sent to any peer that invited us); a peer of a running job keeps its own', async () => {
  const host: any = { peerId: peerIdFromString('12D3KooWJqojwSEKnGTrnicqWedWWxnd6BCofYV93RRpXmNQdrtc'), handle: async () => {}, unhandle: async () => {}, getConnections: () => [], peerStore: { get: async () => ({ addresses: [] }) } }
  const t = new TrainingTransport(host, {})
  const released: string[] = []
  ;(t as any).streams.closeOpened = (p: string) => { released.push(p); return 0 }
  const outboxes = (t as any).outboxes as Map<string, Outbox>
  t.jobRoutes.set('j1', 'auto', 'remote')
  t.send(P, { join: { jobId: 'j1' } }, undefined, 'remote')
  // 50 peers that each invited us to a job we refused: one reply each, and no job to end
  const inviters = Array.from({ length: 50 }, (_, i) => `inviter-${i}`)
  for (const from of inviters) t.send(from, { inviteReply: { jobId: `theirs-${from}`, accepted: false, reason: 'busy' } }, undefined, from)
  assert.is(outboxes.size, 51)
  // their frames go out (not started here: the queues are emptied by hand, then each pump ends)
  for (const [peer, o] of [...outboxes]) { o.queue.length = 0; o.queuedBytes = 0; await (t as any).pump(peer, o) }
  const now = Date.now()
  assert.is(t.releaseIdle(now), 0, 'not idle long enough yet')
  assert.is(t.releaseIdle(now + OUTBOX_IDLE_MS), 50)
  assert.equal([...outboxes.keys()], [P], 'the running job\'s peer keeps its outbox')
  assert.equal(released.sort(), [...inviters].sort())
  t.jobRoutes.delete('j1', 'remote')
  assert.is(outboxes.size, 0, 'and gives it up when its job ends')
})

test.run()
