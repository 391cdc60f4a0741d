// Our own WebRTC attempts (the route book's, src/net/routes/webrtc-upgrade.ts) take the same bound
// as inbound ones (src/core/routing/webrtc-admission.ts; review s10 L3): each is a native
// PeerConnection for up to 10 s, and a round that first-contacts many relayed providers opened one
// per provider at once. Over the bound (our own share of it since s11 M5) an attempt is skipped for
// now ('busy': tried again later, test/unit/net/webrtc-retry.test.ts); a peer whose
// own attempt to us is in flight gets no second one from us; every slot comes back.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { WebRTCUpgrade } from '../../../src/net/routes/webrtc-upgrade.js'
import { WebRTCAdmission } from '../../../src/core/routing/webrtc-admission.js'

const RELAY = '12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'
const ME = '12D3KooWMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMe'
const prov = (i: number): string => `12D3KooWProv${String.fromCharCode(65 + i).repeat(40)}`
const peerOf = (id: string): any => ({ toString: () => id, equals: (o: any) => o.toString() === id })

/** A NATed host whose WebRTC dials hang until `release()`; counts dials in flight. */
function natHost (): { host: any, inFlight: () => number, peak: () => number, release: () => void } {
  let now = 0; let peak = 0
  const waiting: Array<(c: unknown) => void> = []
  const host = {
    getMultiaddrs: () => [multiaddr(`/ip4/7.77.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${ME}`)],
    getConnections: () => [],
    peerStore: { get: async (p: any) => ({ addresses: [{ multiaddr: multiaddr(`/ip4/7.77.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${p.toString() as string}`) }] }) },
    dial: async () => {
      now++; peak = Math.max(peak, now)
      await new Promise(resolve => waiting.push(resolve))
      now--
      throw new Error('ICE failed')
    }
  }
  return { host, inFlight: () => now, peak: () => peak, release: () => { for (const w of waiting.splice(0)) w(undefined) } }
}

test('a round first-contacting 6 relayed providers opens at most the bound\'s attempts at once; the rest are skipped', async () => {
  const { host, peak, release } = natHost()
  const admission = new WebRTCAdmission({ perPeerInFlight: 1, outboundInFlight: 2 })
  const up = new WebRTCUpgrade(host, () => 0, admission)
  const attempts = Array.from({ length: 6 }, async (_, i) => await up.tryOnce(peerOf(prov(i))))
  await new Promise(resolve => setTimeout(resolve, 20))
  assert.is(peak(), 2, 'two attempts in flight at most')
  assert.is(admission.outboundAttemptsInFlight, 2)
  release()
  const results = await Promise.all(attempts)
  assert.equal(results.filter(r => r === 'busy').length, 4, `skipped over the bound: ${results.join(' ')}`)
  assert.equal(results.filter(r => r === 'failed').length, 2)
  assert.is(up.skipped, 4)
  assert.is(admission.outboundAttemptsInFlight, 0, 'every slot came back')
  assert.is(admission.refusals['outbound-in-flight'], 4)
})

test('no outbound attempt to a peer whose inbound attempt is in flight (the first ICE wins anyway)', async () => {
  const { host, peak, release } = natHost()
  const admission = new WebRTCAdmission()
  assert.is(admission.admit(prov(0), { peer: 0, total: 0 }), undefined) // its signalling stream to us
  const up = new WebRTCUpgrade(host, () => 0, admission)
  assert.is(await up.tryOnce(peerOf(prov(0))), 'busy')
  assert.is(peak(), 0)
  admission.done(prov(0))
  const again = up.tryOnce(peerOf(prov(0)))
  await new Promise(resolve => setTimeout(resolve, 20))
  assert.is(peak(), 1)
  release()
  assert.is(await again, 'failed')
})

test.run()
