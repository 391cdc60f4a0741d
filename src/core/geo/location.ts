// Declared locations: validation, fixed-point (1e-4 degree) wire form, great-circle distance.

export interface LatLon {
  lat: number
  lon: number
}

/** Mean Earth radius in km (IUGG). */
export const EARTH_RADIUS_KM = 6371.0088

/** True for finite lat in [-90, 90] and lon in [-180, 180]. */
export function isValidLatLon (lat: number, lon: number): boolean {
  return Number.isFinite(lat) && Number.isFinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

/** Returns a validated location or throws a RangeError that names the bad value. */
export function latLon (lat: number, lon: number): LatLon {
  if (!Number.isFinite(lat) || lat < -90 || lat > 90) throw new RangeError(`latitude ${lat} is outside [-90, 90]`)
  if (!Number.isFinite(lon) || lon < -180 || lon > 180) throw new RangeError(`longitude ${lon} is outside [-180, 180]`)
  return { lat, lon }
}

/**
 * Parses "lat,lon" (e.g. "35.68,139.69"); undefined when the text is not two numbers in range.
 * City names are resolved outside the core (src/geo/cities.ts).
 */
export function parseLatLon (text: string): LatLon | undefined {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*[,\s]\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text)
  if (m == null) return undefined
  const lat = Number(m[1]); const lon = Number(m[2])
  return isValidLatLon(lat, lon) ? { lat, lon } : undefined
}

/** Degrees → the wire's sint32 fixed point (1e-4 degree ≈ 11 m). */
export function toE4 (deg: number): number {
  return Math.round(deg * 1e4)
}

export function fromE4 (e4: number): number {
  return e4 / 1e4
}

const RAD = Math.PI / 180

/** Great-circle distance in km (haversine). */
export function haversineKm (aLat: number, aLon: number, bLat: number, bLon: number): number {
  const dLat = (bLat - aLat) * RAD
  const dLon = (bLon - aLon) * RAD
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(aLat * RAD) * Math.cos(bLat * RAD) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(s)))
}

export function distanceKm (a: LatLon, b: LatLon): number {
  return haversineKm(a.lat, a.lon, b.lat, b.lon)
}

/** A city with its country: "Virginia" is a town in South Africa in the bundled list, and status said only "Virginia". */
export function locationText (l: { name?: string, country?: string, lat: number, lon: number } | null): string {
  if (l === null) return 'undeclared'
  const name = l.name === undefined ? '' : l.country === undefined || l.name.endsWith(`, ${l.country}`) ? l.name : `${l.name}, ${l.country}`
  return `${name} ${l.lat},${l.lon}`.trim()
}
