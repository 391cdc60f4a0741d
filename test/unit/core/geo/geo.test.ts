import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../../src/core/rng.js'
import {
  haversineKm, isValidLatLon, latLon, parseLatLon, toE4, fromE4,
  cellOf, cellId, cellIdOf, parseCellId, ringsAround, cellRingDistance, parentCell, cellCentre,
  predictOneWayMsFromKm, predictGeoRttMs
} from '../../../../src/core/geo/index.js'

test('lat/lon validation and parsing', () => {
  assert.ok(isValidLatLon(0, 0))
  assert.ok(isValidLatLon(-90, 180))
  assert.not.ok(isValidLatLon(91, 0))
  assert.not.ok(isValidLatLon(0, -180.5))
  assert.not.ok(isValidLatLon(NaN, 0))
  assert.throws(() => latLon(100, 0), /latitude 100/)
  assert.equal(parseLatLon('35.68, 139.69'), { lat: 35.68, lon: 139.69 })
  assert.equal(parseLatLon('Tokyo'), undefined)
  assert.equal(parseLatLon('95,0'), undefined)
  assert.is(fromE4(toE4(48.8566)), 48.8566)
})

test('haversine distances match known city pairs', () => {
  // Paris - London ~344 km; Tokyo - New York ~10850 km
  const pl = haversineKm(48.8566, 2.3522, 51.5074, -0.1278)
  assert.ok(Math.abs(pl - 344) < 5, `paris-london ${pl}`)
  const tn = haversineKm(35.6762, 139.6503, 40.7128, -74.006)
  assert.ok(Math.abs(tn - 10850) < 60, `tokyo-ny ${tn}`)
  assert.is(haversineKm(10, 20, 10, 20), 0)
  // antipodes: half the circumference
  assert.ok(Math.abs(haversineKm(0, 0, 0, 180) - Math.PI * 6371.0088) < 1e-6)
})

test('predicted latency grows with distance and includes access delay', () => {
  assert.is(predictOneWayMsFromKm(0), 1)
  assert.ok(Math.abs(predictOneWayMsFromKm(2000) - (1 + 2000 * 1.7 / 200)) < 1e-9)
  const near = predictGeoRttMs({ lat: 48.85, lon: 2.35 }, { lat: 51.5, lon: -0.12 })
  const far = predictGeoRttMs({ lat: 48.85, lon: 2.35 }, { lat: 35.68, lon: 139.69 })
  assert.ok(near < 10 && far > 90 && far < 200, `${near} ${far}`)
})

test('cells: ids round-trip, parents contain children, invalid ids rejected', () => {
  const c = cellOf(35.68, 139.69, 5)
  const id = cellId(c)
  assert.equal(parseCellId(id), c)
  assert.is(cellIdOf(35.68, 139.69, 5), id)
  assert.equal(parseCellId('r5:99:0'), undefined)
  assert.equal(parseCellId('x5:1:1'), undefined)
  assert.equal(parseCellId('r13:0:0'), undefined)
  const p = parentCell(c)!
  assert.equal(p, cellOf(35.68, 139.69, 4))
  const centre = cellCentre(c)
  assert.equal(cellOf(centre.lat, centre.lon, 5), c)
  // edges: the north pole and the antimeridian land in the last row / column
  assert.equal(cellOf(90, 180, 3), { level: 3, row: 7, col: 15 })
  assert.throws(() => cellOf(0, 0, 13), /level 13/)
})

test('ringsAround: rings partition the neighbourhood, with wrap and pole clipping', () => {
  for (const [lat, lon, level] of [[35.6, 139.6, 5], [0, 179.9, 3], [89, -179, 2], [-80, 10, 1]] as const) {
    const center = cellOf(lat, lon, level)
    const seen = new Set<string>()
    for (let r = 0; r <= 6; r++) {
      const ring = ringsAround(center, r)
      for (const id of ring) {
        assert.not.ok(seen.has(id), `cell ${id} listed twice (ring ${r})`)
        seen.add(id)
        const cell = parseCellId(id)!
        assert.is(cellRingDistance(center, cell), r, `${id} in ring ${r} of ${cellId(center)}`)
      }
    }
    // every cell within distance 6 is listed
    const rows = 2 ** level; const cols = 2 ** (level + 1)
    let within = 0
    for (let row = 0; row < rows; row++) {
      for (let col = 0; col < cols; col++) {
        if (cellRingDistance(center, { level, row, col }) <= 6) within++
      }
    }
    assert.is(seen.size, within)
  }
  assert.is(ringsAround('r5:10:10', 1).length, 8)
  assert.is(ringsAround('r5:10:10', 2).length, 16)
  assert.throws(() => ringsAround('nope', 1), /not a geo cell id/)
})

test('vivaldi converges on a synthetic metric space to within 25% for most pairs', async () => {
  const { createVivaldiCoordinate, vivaldiUpdate, predictRtt, vivaldiError } = await import('../../../../src/core/geo/vivaldi.js')
  const rng = createRng(42)
  const n = 40
  // true positions on a plane (ms) plus access heights
  const pos = Array.from({ length: n }, () => [rng.next() * 150, rng.next() * 150, 1 + rng.next() * 4])
  const trueRtt = (i: number, j: number): number => Math.hypot(pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]) + pos[i][2] + pos[j][2]
  const coords = Array.from({ length: n }, () => createVivaldiCoordinate())
  for (let round = 0; round < 20000; round++) {
    const i = rng.int(n); let j = rng.int(n)
    if (j === i) j = (j + 1) % n
    const jitter = 1 + (rng.next() - 0.5) * 0.1
    vivaldiUpdate(coords[i], coords[j], trueRtt(i, j) * jitter, undefined, rng)
  }
  let good = 0; let pairs = 0
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      pairs++
      const rel = Math.abs(predictRtt(coords[i], coords[j]) - trueRtt(i, j)) / trueRtt(i, j)
      if (rel <= 0.25) good++
    }
  }
  assert.ok(good / pairs > 0.9, `only ${good}/${pairs} within 25%`)
  assert.ok(vivaldiError(coords[0]) < 0.5, `error estimate stays high: ${vivaldiError(coords[0])}`)
})

test('vivaldi rejects bad samples and separates coincident points', async () => {
  const { createVivaldiCoordinate, vivaldiUpdate, predictRtt, vivaldiFromArray, vivaldiToArray } = await import('../../../../src/core/geo/vivaldi.js')
  const a = createVivaldiCoordinate(); const b = createVivaldiCoordinate()
  assert.not.ok(vivaldiUpdate(a, b, -1))
  assert.not.ok(vivaldiUpdate(a, b, NaN))
  assert.equal(Array.from(a), Array.from(createVivaldiCoordinate()))
  assert.ok(vivaldiUpdate(a, b, 50))
  assert.ok(predictRtt(a, b) > 0.1)
  assert.equal(vivaldiFromArray([1, 2]), undefined)
  assert.equal(vivaldiFromArray([1, 2, 3, NaN]), undefined)
  assert.equal(Array.from(vivaldiFromArray(vivaldiToArray(a))!), Array.from(a))
})

test.run()
