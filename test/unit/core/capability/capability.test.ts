import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, toHex } from '../../../../src/core/identity/index.js'
import {
  buildCapabilityRecord, signCapabilityRecord, verifyCapability, encodeSignedCapability, normaliseGpuModel,
  capabilitiesOf, capabilityKey, indexKeysOf, matchesQuery, normaliseCapability, planCapabilitySearch,
  CapabilitySearch, CapabilityStore, type CapabilityInit
} from '../../../../src/core/capability/index.js'
import { cellIdOf } from '../../../../src/core/geo/index.js'
import { dbc } from '../../../../src/wire/gen/wire.js'

const NOW = 1_700_000_000_000
function peer (seed: number): { sk: Uint8Array, id: Uint8Array } {
  const sk = createRng(seed).bytes(new Uint8Array(32))
  return { sk, id: peerIdBytesFromEd25519Key(ed25519PublicKey(sk)) }
}
function recordFor (p: { id: Uint8Array }, over: Partial<CapabilityInit> = {}): ReturnType<typeof buildCapabilityRecord> {
  return buildCapabilityRecord({
    peerId: p.id, gpus: [{ model: 'NVIDIA GeForce RTX 4090', count: 2, memoryMib: 24576 }], cpuCores: 16, memoryMib: 65536,
    lat: 35.68, lon: 139.69, executors: ['wasm', 'process'], issuedAt: NOW, ttlMs: 600_000, seq: 1, priceGpuHour: 2, ...over
  })
}

test('gpu model and capability names are normalised', () => {
  assert.is(normaliseGpuModel('NVIDIA GeForce RTX 4090'), 'RTX4090')
  assert.is(normaliseGpuModel('a100-80gb'), 'A10080GB')
  assert.is(normaliseCapability('GPU:rtx 4090'), 'gpu:RTX4090')
  assert.is(normaliseCapability('Executor:WASM'), 'executor:wasm')
  assert.is(normaliseCapability('CPU'), 'cpu')
})

test('sign → encode → verify; forged, tampered, expired and future records are rejected', () => {
  const a = peer(1); const b = peer(2)
  const signed = signCapabilityRecord(recordFor(a), a.sk)
  const v = verifyCapability(encodeSignedCapability(signed), { now: NOW + 1000 })
  assert.ok(v.ok)
  if (v.ok) assert.is(v.record.gpus[0].model, 'RTX4090')
  // signed by b for a's id
  const forged = signCapabilityRecord(recordFor(a), b.sk)
  assert.is((verifyCapability(forged, { now: NOW }) as { reason: string }).reason, 'forged')
  // flip one byte of the record
  const t = dbc.capability.v1.SignedCapability.decode(encodeSignedCapability(signed))
  const rec = Uint8Array.from(t.record); rec[rec.length - 1] ^= 1; t.record = rec
  assert.not.ok(verifyCapability(t, { now: NOW }).ok)
  assert.is((verifyCapability(signed, { now: NOW + 600_000 }) as { reason: string }).reason, 'expired')
  assert.is((verifyCapability(signed, { now: NOW - 3_600_000 }) as { reason: string }).reason, 'not-yet-valid')
  assert.is((verifyCapability(signed, { now: NOW, expectPeer: b.id }) as { reason: string }).reason, 'forged')
  assert.is((verifyCapability(new Uint8Array([1, 2, 3]), { now: NOW }) as { reason: string }).reason, 'malformed')
  assert.is((verifyCapability(new Uint8Array(20_000), { now: NOW }) as { reason: string }).reason, 'oversized')
  assert.throws(() => recordFor(a, { lat: 95 }), /not a valid/)
})

test('capabilities, index keys and matching', () => {
  const a = peer(1)
  const r = recordFor(a)
  assert.equal(capabilitiesOf(r).sort(), ['cpu', 'executor:process', 'executor:wasm', 'gpu', 'gpu:RTX4090'])
  const keys = indexKeysOf(r)
  assert.is(keys.length, 5 * 3)
  assert.ok(keys.every(k => k.key.length === 34 && k.key[0] === 0x12 && k.key[1] === 0x20))
  assert.equal(Array.from(capabilityKey('gpu:rtx 4090', 'r5:1:1')), Array.from(capabilityKey('gpu:RTX4090', 'r5:1:1')))
  assert.not.equal(Array.from(capabilityKey('gpu:RTX4090', 'r5:1:1')), Array.from(capabilityKey('gpu:RTX4090', 'r5:1:2')))
  assert.ok(matchesQuery(r, { capability: 'gpu:RTX4090', minGpuCount: 2 }))
  assert.not.ok(matchesQuery(r, { capability: 'gpu:RTX4090', minGpuCount: 3 }))
  assert.not.ok(matchesQuery(r, { capability: 'gpu:A100' }))
  assert.ok(matchesQuery(r, { capability: 'gpu', minGpuMemoryMib: 24000 }))
  assert.not.ok(matchesQuery(r, { capability: 'gpu', minGpuMemoryMib: 40000 }))
  assert.ok(matchesQuery(r, { capability: 'cpu', minCpuCores: 16, minMemoryMib: 65536, executor: 'wasm' }))
  assert.not.ok(matchesQuery(r, { capability: 'cpu', minCpuCores: 17 }))
  assert.not.ok(matchesQuery(r, { capability: 'executor:docker' }))
  assert.not.ok(matchesQuery(r, { capability: 'gpu', maxPriceGpuHour: 1 }))
  assert.not.ok(matchesQuery(r, { capability: 'tpu' }))
})

test('search plan: own cell first, then rings, then coarser levels, never a cell twice, covering the globe', () => {
  const steps = planCapabilitySearch('gpu:RTX4090', 48.85, 2.35)
  assert.is(steps[0].level, 5)
  assert.is(steps[0].ring, 0)
  assert.equal(steps[0].cells, [cellIdOf(48.85, 2.35, 5)])
  assert.equal([steps[1].level, steps[1].ring, steps[1].cells.length], [3, 0, 1])
  assert.equal([steps[2].level, steps[2].ring, steps[2].cells.length], [3, 1, 8])
  const wider = planCapabilitySearch('gpu', 48.85, 2.35, { maxRing: 1 })
  assert.equal([wider[1].level, wider[1].ring, wider[1].cells.length], [5, 1, 8])
  const all = steps.flatMap(s => s.cells)
  assert.is(new Set(all).size, all.length)
  const level1 = new Set(steps.filter(s => s.level === 1).flatMap(s => s.cells))
  assert.is(level1.size, 8, 'coarsest level covers every cell of the globe')
  assert.ok(steps.length < 12, `${steps.length} steps`)
  assert.ok(steps.reduce((n, s) => n + s.keys.length, 0) <= 18)
})

test('search: verifies, matches, stops at want, sorts nearest first', () => {
  // peers at increasing distance from Paris
  const places = [[35.68, 139.69], [48.86, 2.35], [51.5, -0.12], [40.71, -74.0], [52.52, 13.4]]
  const signed = places.map(([lat, lon], i) => {
    const p = peer(10 + i)
    return { p, s: signCapabilityRecord(recordFor(p, { lat, lon }), p.sk) }
  })
  const forged = signCapabilityRecord(recordFor(peer(20)), peer(21).sk)
  const search = new CapabilitySearch({ query: { capability: 'gpu:RTX4090', want: 3 }, lat: 48.85, lon: 2.35 })
  assert.ok(search.nextStep() !== undefined)
  assert.is(search.addRecords(NOW, [...signed.map(x => encodeSignedCapability(x.s)), encodeSignedCapability(forged)]), 5)
  assert.is(search.rejected.length, 1)
  assert.ok(search.done())
  assert.is(search.nextStep(), undefined)
  const res = search.results()
  assert.is(res.length, 3)
  assert.equal(res.map(r => toHex(r.record.peerId)), [1, 2, 4].map(i => toHex(signed[i].p.id)))
  assert.ok(res[0].predictedMs <= res[1].predictedMs && res[1].predictedMs <= res[2].predictedMs)
})

test('search runs through the whole plan when nothing matches', () => {
  const search = new CapabilitySearch({ query: { capability: 'gpu:H100', want: 1 }, lat: 0, lon: 0 })
  let n = 0
  while (search.nextStep() !== undefined) n++
  assert.is(n, search.steps.length)
  assert.equal(search.results(), [])
})

test('store keeps the newest seq, detects replays and equivocation, prunes expired', () => {
  const a = peer(1)
  const store = new CapabilityStore(2)
  const r1 = recordFor(a, { seq: 1 }); const s1 = signCapabilityRecord(r1, a.sk)
  const r2 = recordFor(a, { seq: 2 }); const s2 = signCapabilityRecord(r2, a.sk)
  const r2b = recordFor(a, { seq: 2, cpuCores: 8 }); const s2b = signCapabilityRecord(r2b, a.sk)
  assert.is(store.put(NOW, r1, s1), 'new')
  assert.is(store.put(NOW, r2, s2), 'updated')
  assert.is(store.put(NOW, r1, s1), 'stale-seq')
  assert.is(store.put(NOW, r2, s2), 'duplicate')
  assert.is(store.put(NOW, r2b, s2b), 'equivocation')
  assert.is([...store.matching(NOW, { capability: 'gpu' })].length, 1)
  assert.is(store.get(NOW + 600_000, toHex(a.id)), undefined)
  assert.is(store.prune(NOW + 600_000), 1)
  // bounded
  for (let i = 0; i < 5; i++) { const p = peer(30 + i); const r = recordFor(p); store.put(NOW, r, signCapabilityRecord(r, p.sk)) }
  assert.is(store.size, 2)
})

test.run()
