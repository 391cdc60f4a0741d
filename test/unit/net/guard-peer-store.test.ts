// The peer-store cap: peers learned about but not connected are kept in a bounded LRU; past the
// cap the least recently updated unconnected peer is deleted from the peer store.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PeerId } from '@libp2p/interface'
import { PeerStoreCap } from '../../../src/net/guard/index.js'

function fakePeer (s: string): PeerId { return { toString: () => s, equals: (o: unknown) => String(o) === s } as unknown as PeerId }

function fakeHost (connected: Set<string>): { host: any, deleted: string[], emit: (type: string, detail: unknown) => void } {
  const target = new EventTarget()
  const deleted: string[] = []
  const host = {
    peerId: fakePeer('self'),
    addEventListener: target.addEventListener.bind(target),
    removeEventListener: target.removeEventListener.bind(target),
    getConnections: (p: PeerId) => connected.has(p.toString()) ? [{}] : [],
    peerStore: { delete: async (p: PeerId) => { deleted.push(p.toString()) } }
  }
  return { host, deleted, emit: (type, detail) => { target.dispatchEvent(new CustomEvent(type, { detail })) } }
}

test('unconnected peers beyond the cap are deleted oldest first; connected peers and self are never counted', async () => {
  const connected = new Set(['c'])
  const { host, deleted, emit } = fakeHost(connected)
  const cap = new PeerStoreCap(host, 3)
  cap.start()
  for (const p of ['a', 'b', 'c', 'self', 'd']) emit('peer:update', { peer: { id: fakePeer(p) } })
  assert.is(cap.size, 3) // a, b, d
  emit('peer:update', { peer: { id: fakePeer('a') } }) // a is touched again: b is now the oldest
  emit('peer:update', { peer: { id: fakePeer('e') } })
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(deleted, ['b'])
  assert.is(cap.size, 3)
  // 256 descriptors' worth of peers: the store keeps at most the cap
  for (let i = 0; i < 256; i++) emit('peer:update', { peer: { id: fakePeer(`x${i}`) } })
  await new Promise(resolve => setImmediate(resolve))
  assert.is(cap.size, 3)
  assert.is(deleted.length, 1 + 256)
  assert.is(cap.trimmed, 257)
  // a peer that connects leaves the LRU; when it disconnects it is tracked again
  emit('peer:connect', fakePeer('x255'))
  assert.is(cap.size, 2)
  cap.stop()
})

test.run()
