import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { dbc } from '../../../../src/wire/gen/wire.js'
import { DEFAULT_POLICY, decideOffer, type OfferContext, type ProviderPolicy } from '../../../../src/core/compute/offer-policy.js'
import { signOffer, verifyOffer } from '../../../../src/core/compute/offer.js'
import { SlotLedger } from '../../../../src/core/compute/slot-ledger.js'
import { createRng } from '../../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../../src/core/identity/index.js'
import { nodeSuite } from '../../../../src/crypto/suite.js'

const NOW = 1_700_000_000_000
const policy: ProviderPolicy = { ...DEFAULT_POLICY, priceGpuHour: { RTX4090: 0.8, '*': 2 }, priceCpuHour: 0.04, minLeaseMs: 60_000, regions: ['eu'], maxInputBytes: 1000, maxTaskMs: 60_000, executors: ['wasm', 'process'], offerTtlMs: 30_000 }
const ledger = new SlotLedger({ cpuSlots: 4, memoryMib: 4096, gpus: [{ index: 0, model: 'RTX4090', memoryMib: 24576 }, { index: 1, model: 'RTX4090', memoryMib: 24576 }] })
const ctx = (over: Partial<OfferContext> = {}): OfferContext => ({ policy, availableExecutors: ['wasm'], capacityFor: d => ledger.concurrentCapacity(d), freeSlotsFor: d => ledger.freeSlotsFor(d), requesterRegion: 'eu-west', perfScore: 120, now: NOW, ...over })
const req = (over: dbc.task.v1.ILeaseRequest = {}): dbc.task.v1.ILeaseRequest => ({ jobId: new Uint8Array([1]), slots: 8, executor: 'wasm', resources: { cpuCores: 1, memoryMib: 512 }, maxInputBytes: 100, expectedTaskMs: 1000, ...over })

test('offers the free slots at the policy price, expiring after the TTL', () => {
  const d = decideOffer(req(), ctx())
  assert.equal(d, { kind: 'offer', terms: { slots: 4, priceGpuHour: 0, priceCpuHour: 0.04, minLeaseMs: 60_000, expiresAt: NOW + 30_000, perfScore: 120 } })
  const g = decideOffer(req({ slots: 1, resources: { gpuModel: 'NVIDIA GeForce RTX 4090', gpuCount: 1 } }), ctx())
  assert.is(g.kind === 'offer' && g.terms.priceGpuHour, 0.8)
  assert.is(g.kind === 'offer' && g.terms.slots, 1)
})

test('refuses with a reason', () => {
  const cases: Array<[dbc.task.v1.ILeaseRequest, Partial<OfferContext>, RegExp]> = [
    [req({ executor: 'docker' }), {}, /"docker" is not enabled/],
    [req({ executor: 'process' }), {}, /"process" is not available on this machine/],
    [req(), { requesterRegion: 'us-east' }, /serves only regions eu, not us-east/],
    [req(), { requesterRegion: undefined }, /region is unknown/],
    [req({ maxInputBytes: 5000 }), {}, /5000 bytes exceed this provider's limit of 1000/],
    [req({ expectedTaskMs: 120_000 }), {}, /120000 ms exceed/],
    [req({ resources: { gpuModel: 'A100', gpuCount: 1 } }), {}, /cannot run tasks needing 1x A100/],
    [req({ resources: { gpuModel: 'RTX4090', gpuCount: 1 }, maxPriceHour: 0.5 }), {}, /price 0.84 per slot-hour is above the requester's maximum 0.5/],
    [req({ requestExpiresAt: NOW - 1 }), {}, /expired/],
    [req(), { freeSlotsFor: () => 0 }, /busy/]
  ]
  for (const [r, c, re] of cases) {
    const d = decideOffer(r, ctx(c))
    assert.is(d.kind, 'refuse', String(re))
    assert.match(d.kind === 'refuse' ? d.reason : '', re)
  }
})

test('signed offers verify, expire, and fail when tampered', () => {
  const rng = createRng(3)
  const secret = rng.bytes(new Uint8Array(32))
  const provider = peerIdBytesFromEd25519Key(ed25519PublicKey(secret))
  const d = decideOffer(req(), ctx())
  if (d.kind !== 'offer') throw new Error('expected an offer')
  const offer = signOffer(secret, { offerId: new Uint8Array([5]), jobId: new Uint8Array([1]) }, { terms: d.terms }, NOW)
  const wire = dbc.task.v1.Offer.decode(dbc.task.v1.Offer.encode(offer).finish())
  assert.equal(verifyOffer(wire, NOW, provider), { ok: true })
  assert.equal(verifyOffer(wire, NOW + 30_000), { ok: false, code: 'OFFER_EXPIRED', reason: 'offer has expired' })
  // the peer that answered must be the provider the offer names (a replayed offer is another's)
  const other = peerIdBytesFromEd25519Key(ed25519PublicKey(rng.bytes(new Uint8Array(32))))
  assert.equal(verifyOffer(wire, NOW, other), { ok: false, code: 'OFFER_FORGED', reason: 'offer is from another provider' })
  // node:crypto's verifier gives the same answers
  assert.equal(verifyOffer(wire, NOW, provider, nodeSuite.verify), { ok: true })
  assert.is(verifyOffer(dbc.task.v1.Offer.create({ ...wire, priceCpuHour: 0.01 }), NOW, provider, nodeSuite.verify).ok, false)
  const cheaper = dbc.task.v1.Offer.create({ ...wire, priceCpuHour: 0.01 })
  assert.match(JSON.stringify(verifyOffer(cheaper, NOW)), /signature does not verify/)
  const refusal = signOffer(secret, { offerId: new Uint8Array([6]), jobId: new Uint8Array([1]) }, { refusal: 'busy' }, NOW)
  assert.ok(verifyOffer(refusal, NOW).ok)
  assert.is(refusal.refusal, 'busy')
  assert.is(refusal.slots, 0)
})

test.run()
