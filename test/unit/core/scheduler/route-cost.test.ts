// Placement charges a relayed route its relay hop: a near direct provider beats a relayed one
// that only looks near, yet a provider behind NAT still gets the work when it is the best or
// the only offer.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { placeTasks, type OfferView, type PlacementRequest } from '../../../../src/core/scheduler/placement.js'
import { routeCost, RELAY_FORWARD_MS, UNKNOWN_RELAY_RTT_MS, RELAY_BANDWIDTH_BYTES_PER_SEC } from '../../../../src/core/scheduler/route-cost.js'

// a short job: transfer (RTT) decides between equal machines
const req: PlacementRequest = { now: 0, taskCount: 1, copies: 1, expectedTaskMs: 5, inputBytes: 100, gpuCount: 0, cores: 1 }
const offer = (provider: string, net: { rttMs?: number, bandwidthBytesPerSec?: number }, o: Partial<OfferView> = {}): OfferView =>
  ({ offerId: 'o-' + provider, provider, slots: 1, priceGpuHour: 0, priceCpuHour: 1, perfScore: 1, expiresAt: 1e9, ...net, ...o })
const winner = (offers: OfferView[], r: PlacementRequest = req): string => {
  const p = placeTasks(r, offers)
  return p.offers[p.copyOffer[0]].provider
}

test('routeCost: direct and hole-punched cost the estimate; relayed adds the relay leg and caps bandwidth', () => {
  assert.equal(routeCost({ kind: 'direct', rttMs: 12, bandwidthBytesPerSec: 1e8 }), { rttMs: 12, bandwidthBytesPerSec: 1e8, extraRttMs: 0 })
  assert.equal(routeCost({ kind: 'hole-punched', rttMs: 12 }).extraRttMs, 0)
  const r = routeCost({ kind: 'relayed', rttMs: 12, bandwidthBytesPerSec: 1e8, relayRttMs: 30 })
  assert.is(r.rttMs, 12 + 30 + RELAY_FORWARD_MS)
  assert.is(r.bandwidthBytesPerSec, RELAY_BANDWIDTH_BYTES_PER_SEC)
  assert.is(routeCost({ kind: 'relayed', rttMs: 12 }).extraRttMs, UNKNOWN_RELAY_RTT_MS + RELAY_FORWARD_MS, 'an unknown relay is not free')
})

test('a near direct provider wins over a relayed one that looks nearer before the relay hop', () => {
  const direct = offer('direct', routeCost({ kind: 'direct', rttMs: 20 }))
  // raw estimate 10 ms (nearer than the direct one), but every byte goes through a relay 25 ms away
  const relayedRaw = offer('natted', { rttMs: 10 })
  const relayed = offer('natted', routeCost({ kind: 'relayed', rttMs: 10, relayRttMs: 25 }))
  assert.is(winner([direct, relayedRaw]), 'natted', 'without the route charge the NATed provider would win')
  assert.is(winner([direct, relayed]), 'direct', 'with it the near direct provider wins')
})

test('a NATed provider is still used when it is the best offer or the only one', () => {
  const long: PlacementRequest = { ...req, expectedTaskMs: 60_000 }
  const direct = offer('direct', routeCost({ kind: 'direct', rttMs: 20 }))
  const fastNatted = offer('natted', routeCost({ kind: 'relayed', rttMs: 80, relayRttMs: 40 }), { perfScore: 4 })
  assert.is(winner([direct, fastNatted], long), 'natted', 'a 4x faster GPU behind NAT wins a long task despite the relay')
  assert.is(winner([offer('natted', routeCost({ kind: 'relayed', rttMs: 200, relayRttMs: 100 }))]), 'natted', 'the only offer is used')
})

test.run()
