// `routing: overlay` is per job (src/net/routes): a provider an overlay-only job uses turns
// private (no connection) only while no job of the node that allows connections uses it; such a
// job takes a connection to it (the provider leaves the private set), and the overlay-only job's
// messages keep the overlay without putting it back (which would close the other job's
// connection), until that use is DIRECT_WANTED_MS old. The node's config `routing.mode: overlay`
// stays node-wide: no job reaches the provider on a connection. A job's `routing: direct` never
// falls back to the overlay; `auto` does.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { RouteBook, type RoutingMode } from '../../../src/net/routes/index.js'
import { OverlayOnlyPeers, DIRECT_WANTED_MS } from '../../../src/net/routes/private-peers.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { fakeOverlay } from './fake-overlay.js'

const newPeer = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const OVERLAY_JOB = new Uint8Array(32).fill(1)
const AUTO_JOB = new Uint8Array(32).fill(2)
const DIRECT_JOB = new Uint8Array(32).fill(3)
const routingOf = (msg: dbc.task.v1.ITaskMessage): RoutingMode | undefined => {
  const id = msg.leaseRequest?.jobId ?? msg.lease?.jobId ?? msg.task?.jobId
  if (id == null) return undefined
  return id[0] === 1 ? 'overlay' : id[0] === 2 ? 'auto' : 'direct'
}

/** A host whose dials succeed (a direct connection) unless `fail`; counts dials and streams. */
function fakeHost (opts: { fail?: boolean } = {}): any {
  const h = {
    dials: 0,
    streams: 0,
    addEventListener: () => {},
    removeEventListener: () => {},
    getConnections: () => [],
    dial: async (peer: any) => {
      h.dials++
      if (opts.fail === true) throw new Error('connect EHOSTUNREACH')
      return { remotePeer: peer, remoteAddr: multiaddr('/ip4/10.0.0.9/tcp/4001'), status: 'open', direction: 'outbound', timeline: { open: Date.now() }, streams: [], newStream: async () => { h.streams++; return {} } }
    }
  }
  return h
}


const overStream = async (): Promise<dbc.task.v1.TaskMessage> => dbc.task.v1.TaskMessage.create({ offer: { slots: 2 } })

test('an overlay-only job does not make its provider overlay-only for the node: another job reaches it on a connection', async () => {
  const P = await newPeer()
  let now = 1_000_000
  const priv = new OverlayOnlyPeers(() => now)
  const hungUp: string[] = []
  priv.hangUp = p => { hungUp.push(p) }
  priv.noteMatch(P)
  const host = fakeHost()
  const { overlay, sent } = fakeOverlay()
  const book = new RouteBook(host, { overlay: () => overlay, privatePeers: priv, forceOverlay: () => false, jobRouting: routingOf, now: () => now })
  const ask = async (jobId: Uint8Array, msg: dbc.task.v1.ITaskMessage = { leaseRequest: { jobId } }): Promise<number> => (await book.request(peerIdFromString(P), '/dbc/task/1.0.0', msg, 10, undefined, overStream)).offer?.slots ?? 0

  // the overlay-only job first: its provider turns private (the gater refuses it, an open connection closes)
  assert.is(await ask(OVERLAY_JOB), 1, 'over the overlay')
  assert.ok(priv.has(P))
  assert.equal(hungUp, [P])
  assert.is(host.dials, 0)

  // a job that allows connections: the provider leaves the private set, the job takes a connection
  assert.is(await ask(AUTO_JOB), 2, 'on a stream')
  assert.not.ok(priv.has(P), 'reachable directly again')
  assert.is(host.dials, 1)
  assert.is(book.get(P)?.kind, 'direct')

  // the overlay-only job keeps the overlay, and does not hang up the other job's connection
  assert.is(await ask(OVERLAY_JOB, { task: { jobId: OVERLAY_JOB } }), 1)
  assert.is(await ask(OVERLAY_JOB, { lease: { jobId: OVERLAY_JOB } }), 1)
  assert.is(sent.length, 3, 'every message of the overlay job took the overlay')
  assert.not.ok(priv.has(P), 'not private again')
  assert.equal(hungUp, [P], 'no second hang-up')
  assert.match(book.get(P)?.facts ?? '', /allows connections uses this provider too/)
  assert.is(host.dials, 1, 'the overlay job never dialled')

  // once no connection-allowing job used it for DIRECT_WANTED_MS, the overlay job makes it private again
  now += DIRECT_WANTED_MS
  assert.is(await ask(OVERLAY_JOB, { lease: { jobId: OVERLAY_JOB } }), 1)
  assert.ok(priv.has(P))
  assert.equal(hungUp, [P, P])
})

test('the node\'s config routing: overlay stays node-wide: no job releases the provider', async () => {
  const P = await newPeer()
  const priv = new OverlayOnlyPeers()
  priv.noteMatch(P)
  const host = fakeHost()
  const { overlay, sent } = fakeOverlay()
  const book = new RouteBook(host, { overlay: () => overlay, privatePeers: priv, forceOverlay: () => true, jobRouting: routingOf })
  for (const jobId of [OVERLAY_JOB, AUTO_JOB, DIRECT_JOB]) await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { leaseRequest: { jobId } }, 10, undefined, overStream)
  assert.is(sent.length, 3, 'every job over the overlay')
  assert.ok(priv.has(P))
  assert.is(host.dials, 0)
})

test('a job\'s routing: direct never falls back to the overlay; auto does; a message naming no job follows the node\'s fallback', async () => {
  const P = await newPeer()
  const host = fakeHost({ fail: true })
  const { overlay, sent } = fakeOverlay()
  let nodeFallback = true
  const book = new RouteBook(host, { overlay: () => overlay, jobRouting: routingOf, fallback: () => nodeFallback })
  const err = await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { leaseRequest: { jobId: DIRECT_JOB } }, 10, undefined, overStream).then(() => undefined, (e: Error) => e)
  assert.ok(err !== undefined && /EHOSTUNREACH/.test(err.message), 'the connection error, not the overlay')
  assert.is(sent.length, 0)
  assert.is((await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { leaseRequest: { jobId: AUTO_JOB } }, 10, undefined, overStream)).offer?.slots, 1, 'auto fell back')
  assert.is(book.get(P)?.kind, 'overlay')
  // the fallback is sticky, but not for a direct job
  const again = await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { task: { jobId: DIRECT_JOB } }, 10, undefined, overStream).then(() => undefined, (e: Error) => e)
  assert.ok(again !== undefined, 'the direct job still takes no overlay')
  assert.is(sent.length, 1)
  // a voucher names no job: the node's mode decides (config direct: no fallback)
  const Q = await newPeer()
  nodeFallback = false
  const v = await book.request(peerIdFromString(Q), '/dbc/task/1.0.0', { voucher: {} }, 10, undefined, overStream).then(() => undefined, (e: Error) => e)
  assert.ok(v !== undefined, 'config direct: no fallback')
  nodeFallback = true
  assert.is((await book.request(peerIdFromString(Q), '/dbc/task/1.0.0', { voucher: {} }, 10, undefined, overStream)).offer?.slots, 1)
})

test.run()
