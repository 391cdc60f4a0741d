// Capability names, DHT index keys, matching a record against a query.
import { sha256 } from '@noble/hashes/sha2.js'
import { dbc } from '../../wire/gen/wire.js'
import { cellIdOf } from '../geo/cells.js'
import { normaliseGpuModel, type CapabilityRecord } from './record.js'

export type CapabilityQuery = dbc.capability.v1.ICapabilityQuery

/** Cell levels a record is indexed under, finest first: r5 ≈ 600 km, r3 ≈ 2500 km, r1 = a quarter of a hemisphere. */
export const INDEX_LEVELS: readonly number[] = [5, 3, 1]

/**
 * The capability names a record is indexed under: "gpu" (any GPU), "gpu:<MODEL>", "cpu",
 * "executor:<name>". Software is matched from the record but not indexed (too many names).
 */
export function capabilitiesOf (record: CapabilityRecord): string[] {
  const out = new Set<string>()
  for (const g of record.gpus) {
    if ((g.count ?? 0) > 0) { out.add('gpu'); out.add(`gpu:${g.model}`) }
  }
  if (record.cpuCores > 0) out.add('cpu')
  for (const e of record.executors) out.add(`executor:${e}`)
  return [...out]
}

/** Canonical form of a capability name typed by a user ("gpu:rtx 4090" → "gpu:RTX4090"). */
export function normaliseCapability (capability: string): string {
  const c = capability.trim()
  const i = c.indexOf(':')
  if (i < 0) return c.toLowerCase()
  const kind = c.slice(0, i).toLowerCase(); const value = c.slice(i + 1)
  return kind === 'gpu' ? `gpu:${normaliseGpuModel(value)}` : `${kind}:${value.trim().toLowerCase()}`
}

const KEY_PREFIX = 'dbc/cap/v1/'
const encoder = new TextEncoder()

/** sha2-256 multihash (0x12 0x20 || digest) of "dbc/cap/v1/<capability>/<cell>": a DHT provider key (wrap in a CIDv1 raw at the edge). */
export function capabilityKey (capability: string, cell: string): Uint8Array {
  const digest = sha256(encoder.encode(`${KEY_PREFIX}${normaliseCapability(capability)}/${cell}`))
  const mh = new Uint8Array(34)
  mh[0] = 0x12; mh[1] = 0x20; mh.set(digest, 2)
  return mh
}

/** Every (capability, cell) key a record should be provided under. */
export function indexKeysOf (record: CapabilityRecord, levels: readonly number[] = INDEX_LEVELS): Array<{ capability: string, cell: string, key: Uint8Array }> {
  const lat = record.latE4 / 1e4; const lon = record.lonE4 / 1e4
  const out: Array<{ capability: string, cell: string, key: Uint8Array }> = []
  for (const capability of capabilitiesOf(record)) {
    for (const level of levels) {
      const cell = cellIdOf(lat, lon, level)
      out.push({ capability, cell, key: capabilityKey(capability, cell) })
    }
  }
  return out
}

/** Whether `record` satisfies the query's capability and requirements (expiry is checked elsewhere). */
export function matchesQuery (record: CapabilityRecord, query: CapabilityQuery): boolean {
  const cap = normaliseCapability(query.capability ?? '')
  const minCount = Math.max(1, query.minGpuCount ?? 0)
  const minGpuMem = query.minGpuMemoryMib ?? 0
  if (cap === 'gpu' || cap.startsWith('gpu:') || (query.minGpuCount ?? 0) > 0) {
    const model = cap.startsWith('gpu:') ? cap.slice(4) : undefined
    let count = 0
    for (const g of record.gpus) {
      if (model !== undefined && g.model !== model) continue
      if ((g.memoryMib ?? 0) < minGpuMem) continue
      count += g.count ?? 0
    }
    if (count < minCount) return false
  } else if (cap.startsWith('executor:')) {
    if (!record.executors.includes(cap.slice(9))) return false
  } else if (cap.startsWith('software:')) {
    if (!record.software.map(s => s.toLowerCase()).includes(cap.slice(9))) return false
  } else if (cap === 'cpu') {
    if (record.cpuCores <= 0) return false
  } else if (cap !== '') {
    return false
  }
  if ((query.minCpuCores ?? 0) > record.cpuCores) return false
  if ((query.minMemoryMib ?? 0) > record.memoryMib) return false
  if ((query.executor ?? '') !== '' && !record.executors.includes(query.executor!.toLowerCase())) return false
  const maxPrice = query.maxPriceGpuHour ?? 0
  if (maxPrice > 0 && record.priceGpuHour > maxPrice) return false
  return true
}
