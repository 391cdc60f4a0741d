// Virtual nodes placed where people live: each node picks a city with probability
// proportional to its population, then jitters a few km around it. Positions are kept as
// unit vectors (Float32 x, y, z) so a great-circle distance is one dot product and acos.
import type { SimRandom } from '../engine/random.js'
import { loadCities } from './cities.js'

export const EARTH_RADIUS_KM = 6371

export interface PopulationOptions {
  /** Share of nodes behind NAT (reachable only through relays; DHT clients). */
  natShare: number
  /** Standard deviation of the position jitter around the city centre, km. */
  jitterKm: number
  /** Median one-way access-link delay per node, ms (log-normal around it). */
  accessMedianMs: number
}

export const DEFAULT_POPULATION: PopulationOptions = { natShare: 0.3, jitterKm: 15, accessMedianMs: 3 }

export interface Population {
  count: number
  city: Int32Array
  latDeg: Float32Array
  lonDeg: Float32Array
  x: Float32Array
  y: Float32Array
  z: Float32Array
  /** One-way delay of this node's access link, ms. */
  accessMs: Float32Array
  /** 1 when the node is behind NAT. */
  nat: Uint8Array
}

export function placeNodes (count: number, rng: SimRandom, opts: PopulationOptions = DEFAULT_POPULATION): Population {
  const cities = loadCities()
  const cum = new Float64Array(cities.count)
  let total = 0
  for (let i = 0; i < cities.count; i++) { total += cities.population[i]; cum[i] = total }
  const p: Population = {
    count,
    city: new Int32Array(count),
    latDeg: new Float32Array(count),
    lonDeg: new Float32Array(count),
    x: new Float32Array(count),
    y: new Float32Array(count),
    z: new Float32Array(count),
    accessMs: new Float32Array(count),
    nat: new Uint8Array(count)
  }
  const jitterDeg = opts.jitterKm / 111.2
  for (let n = 0; n < count; n++) {
    const r = rng.next() * total
    let lo = 0; let hi = cities.count - 1
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cum[mid] <= r) lo = mid + 1; else hi = mid }
    p.city[n] = lo
    const lat = Math.max(-89.9, Math.min(89.9, cities.latDeg[lo] + rng.normal() * jitterDeg))
    const cosLat = Math.cos(lat * Math.PI / 180)
    let lon = cities.lonDeg[lo] + rng.normal() * jitterDeg / Math.max(0.05, cosLat)
    if (lon > 180) lon -= 360
    if (lon < -180) lon += 360
    p.latDeg[n] = lat; p.lonDeg[n] = lon
    const la = lat * Math.PI / 180; const lo2 = lon * Math.PI / 180
    p.x[n] = Math.cos(la) * Math.cos(lo2); p.y[n] = Math.cos(la) * Math.sin(lo2); p.z[n] = Math.sin(la)
    p.accessMs[n] = opts.accessMedianMs * Math.exp(0.5 * rng.normal())
    p.nat[n] = rng.next() < opts.natShare ? 1 : 0
  }
  return p
}

/** Great-circle distance between two nodes, km. */
export function distanceKm (p: Population, a: number, b: number): number {
  const dot = p.x[a] * p.x[b] + p.y[a] * p.y[b] + p.z[a] * p.z[b]
  return EARTH_RADIUS_KM * Math.acos(dot > 1 ? 1 : (dot < -1 ? -1 : dot))
}
