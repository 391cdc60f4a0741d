// Vivaldi network coordinates (Dabek et al., SIGCOMM 2004) with a height component, as in
// Serf/Consul: a Euclidean vector plus a non-negative "height" for the access link.
// A coordinate is one Float64Array [x_0..x_{d-1}, height, error] so the simulator can keep
// all nodes' coordinates in one big buffer and pass subarrays.

import type { Rng } from '../rng.js'

export interface VivaldiConfig {
  /** Euclidean dimensions (2 or 3 is usual). */
  dims: number
  /** Weight of a new error sample (ce). */
  ce: number
  /** Timestep factor (cc). */
  cc: number
  /** Error of a fresh coordinate. */
  initialError: number
  /** Heights never drop below this (ms). */
  minHeight: number
}

export const DEFAULT_VIVALDI: VivaldiConfig = { dims: 2, ce: 0.25, cc: 0.25, initialError: 1.5, minHeight: 0.01 }

/** [x_0 .. x_{dims-1}, height, error] */
export type VivaldiCoordinate = Float64Array

export function createVivaldiCoordinate (config: VivaldiConfig = DEFAULT_VIVALDI): VivaldiCoordinate {
  const c = new Float64Array(config.dims + 2)
  c[config.dims] = config.minHeight
  c[config.dims + 1] = config.initialError
  return c
}

export function vivaldiDims (c: VivaldiCoordinate): number { return c.length - 2 }
export function vivaldiHeight (c: VivaldiCoordinate): number { return c[c.length - 2] }
export function vivaldiError (c: VivaldiCoordinate): number { return c[c.length - 1] }

/** Predicted RTT (ms) between two coordinates: Euclidean distance plus both heights. */
export function predictRtt (a: VivaldiCoordinate, b: VivaldiCoordinate): number {
  const d = a.length - 2
  let s = 0
  for (let i = 0; i < d; i++) { const x = a[i] - b[i]; s += x * x }
  return Math.sqrt(s) + a[d] + b[d]
}

/**
 * One Vivaldi step: moves `self` (in place) after measuring `rttMs` to a peer at `remote`.
 * Returns false (and changes nothing) for a sample that is not a positive finite RTT or a
 * coordinate of another dimension. `rng` picks a direction when both points coincide;
 * without one the first axis is used (deterministic).
 */
export function vivaldiUpdate (self: VivaldiCoordinate, remote: VivaldiCoordinate, rttMs: number, config: VivaldiConfig = DEFAULT_VIVALDI, rng?: Rng): boolean {
  if (!Number.isFinite(rttMs) || rttMs <= 0 || self.length !== remote.length) return false
  const d = self.length - 2
  const hi = d; const ei = d + 1
  const remoteError = remote[ei]
  if (!Number.isFinite(remoteError) || remoteError <= 0) return false
  // Euclidean part of the difference vector.
  let mag = 0
  for (let i = 0; i < d; i++) { const x = self[i] - remote[i]; mag += x * x }
  mag = Math.sqrt(mag)
  const dist = mag + self[hi] + remote[hi]
  const w = self[ei] / (self[ei] + remoteError)
  const relErr = Math.abs(dist - rttMs) / rttMs
  self[ei] = Math.max(0.01, Math.min(config.initialError, relErr * config.ce * w + self[ei] * (1 - config.ce * w)))
  const force = config.cc * w * (rttMs - dist)
  if (mag > 1e-9) {
    for (let i = 0; i < d; i++) self[i] += force * (self[i] - remote[i]) / mag
    self[hi] = Math.max(config.minHeight, self[hi] + (self[hi] + remote[hi]) * force / mag)
  } else {
    // Coincident points: push apart along a random (or the first) axis.
    const axis = rng === undefined ? 0 : rng.int(d)
    const sign = rng === undefined ? 1 : (rng.next() < 0.5 ? -1 : 1)
    self[axis] += sign * force
  }
  return true
}

/** Wire form: [x..., height, error] as plain numbers (proto `repeated float vivaldi`). */
export function vivaldiToArray (c: VivaldiCoordinate): number[] {
  return Array.from(c)
}

/** Parses the wire form; undefined for a wrong length or non-finite numbers. */
export function vivaldiFromArray (values: ArrayLike<number>, config: VivaldiConfig = DEFAULT_VIVALDI): VivaldiCoordinate | undefined {
  if (values.length !== config.dims + 2) return undefined
  const c = new Float64Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (!Number.isFinite(v) || Math.abs(v) > 1e7) return undefined
    c[i] = v
  }
  if (c[config.dims] < 0 || c[config.dims + 1] <= 0) return undefined
  return c
}
