// Regressions for bad inputs the live fuzzer found: a membership frame that is oversized or
// truncated, and a capability lookup that does not decode, used to be dropped without costing
// the sender anything (and without telling it why); overlay penalties were not visible in
// `dbc node status`. Now each costs the sender score, is answered with a ProtocolError naming
// the problem, and shows under status.overlay.penalizedPeers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'
import { newIdentity, type FuzzIdentity } from '../fuzz/live-fuzzer.js'
import { encodeFrame, encodeFramePrefix } from '../../src/wire/frame.js'
import { FramedStream } from '../../src/net/framed.js'
import { dbc } from '../../src/wire/gen/wire.js'

const net = new LocalNetwork()
let node: LocalNode

async function send (id: FuzzIdentity, protocol: string, chunks: Uint8Array[], closeWrite: boolean): Promise<dbc.common.v1.ProtocolError | undefined> {
  const stream = await id.host.dialProtocol(multiaddr(node.addrs[0]), protocol)
  const framed = new FramedStream(stream)
  for (const c of chunks) stream.send(c)
  if (closeWrite) await stream.close().catch(() => {})
  try {
    const f = await framed.read({ signal: AbortSignal.timeout(5000) })
    return f === undefined ? undefined : dbc.common.v1.ProtocolError.decode(f)
  } catch { return undefined }
}

async function overlayPenalty (peer: string): Promise<{ offence: string, score: number } | undefined> {
  const end = Date.now() + 5000
  while (Date.now() < end) {
    const st = await node.api.call<Record<string, any>>('GET', '/v1/status')
    const p = (st.overlay.penalizedPeers as Array<{ peer: string, offence: string, score: number }>).find(x => x.peer === peer)
    if (p !== undefined) return p
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return undefined
}

test.before(async () => { node = await net.start({ name: 'n', location: '35.68,139.69', extra: ['--no-connection-monitor'] }) })
test.after(async () => { await net.stop() })

test('an oversized membership frame costs the sender and is answered with FRAME_TOO_LARGE', async () => {
  const id = await newIdentity()
  try {
    const err = await send(id, '/dbc/membership/1.0.0', [encodeFramePrefix(100 * 1024 * 1024)], false)
    assert.is(err?.code, 'FRAME_TOO_LARGE')
    assert.match(err?.message ?? '', /membership message refused: frame of \d+ bytes exceeds/)
    const p = await overlayPenalty(id.peerId)
    assert.is(p?.offence, 'oversized')
    assert.ok((p?.score ?? 0) < 0)
  } finally { await id.host.stop() }
})

test('a truncated membership frame costs the sender', async () => {
  const id = await newIdentity()
  try {
    const full = encodeFrame(dbc.membership.v1.MembershipMessage.encode({ shuffleRequest: { peers: [{ peerId: id.peerBytes, age: 1 }] } }).finish())
    const err = await send(id, '/dbc/membership/1.0.0', [full.subarray(0, full.length - 3)], true)
    assert.is(err?.code, 'TRUNCATED_FRAME')
    assert.is((await overlayPenalty(id.peerId))?.offence, 'malformed')
  } finally { await id.host.stop() }
})

test('a capability lookup that does not decode costs the sender and is answered with MALFORMED_MESSAGE', async () => {
  const id = await newIdentity()
  try {
    const err = await send(id, '/dbc/capability/1.0.0', [encodeFrame(new Uint8Array([0xff, 0xff, 0xff, 0x01]))], false)
    assert.is(err?.code, 'MALFORMED_MESSAGE')
    assert.match(err?.message ?? '', /capability lookup refused/)
    assert.is((await overlayPenalty(id.peerId))?.offence, 'malformed')
  } finally { await id.host.stop() }
})

test('a well-formed capability lookup still gets an answer and costs nothing', async () => {
  const id = await newIdentity()
  try {
    const stream = await id.host.dialProtocol(multiaddr(node.addrs[0]), '/dbc/capability/1.0.0')
    const framed = new FramedStream(stream)
    await framed.write(dbc.capability.v1.CapabilityLookupRequest.encode({ query: { capability: 'gpu', want: 1 } }).finish())
    const f = await framed.readRequired({ signal: AbortSignal.timeout(5000) })
    assert.ok(Array.isArray(dbc.capability.v1.CapabilityLookupResponse.decode(f).records))
    const st = await node.api.call<Record<string, any>>('GET', '/v1/status')
    assert.not.ok((st.overlay.penalizedPeers as Array<{ peer: string }>).some(p => p.peer === id.peerId))
  } finally { await id.host.stop() }
})

test.run()
