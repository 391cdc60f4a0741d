// Latency predicted from geography: light in fibre covers ~200 km per ms, real routes are
// longer than the great circle (path inflation), and each end adds access/queueing delay.

import { haversineKm, type LatLon } from './location.js'

export interface GeoLatencyModel {
  /** km per ms in fibre (about 2/3 of c). */
  fibreKmPerMs: number
  /** Route length / great-circle length; measured internet paths sit around 1.5-2. */
  pathInflation: number
  /** One-way delay added by the two access links together, ms. */
  accessMs: number
}

export const DEFAULT_GEO_LATENCY: GeoLatencyModel = { fibreKmPerMs: 200, pathInflation: 1.7, accessMs: 1 }

export function predictOneWayMsFromKm (km: number, model: GeoLatencyModel = DEFAULT_GEO_LATENCY): number {
  return model.accessMs + (km * model.pathInflation) / model.fibreKmPerMs
}

/** Predicted one-way latency between two declared locations, ms. */
export function predictOneWayMs (a: LatLon, b: LatLon, model: GeoLatencyModel = DEFAULT_GEO_LATENCY): number {
  return predictOneWayMsFromKm(haversineKm(a.lat, a.lon, b.lat, b.lon), model)
}

/** Predicted round-trip time between two declared locations, ms. */
export function predictGeoRttMs (a: LatLon, b: LatLon, model: GeoLatencyModel = DEFAULT_GEO_LATENCY): number {
  return 2 * predictOneWayMs(a, b, model)
}
