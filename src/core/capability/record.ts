// Capability records: what a compute peer offers, signed by its peer key, with an expiry and a
// sequence number. The signed bytes travel as they were signed (never re-encoded).
import { dbc } from '../../wire/gen/wire.js'
import { ed25519KeyFromPeerIdBytes, signBytes, verifyBytes } from '../identity/index.js'
import { cellIdOf } from '../geo/cells.js'
import { isValidLatLon, toE4 } from '../geo/location.js'

export type CapabilityRecord = dbc.capability.v1.CapabilityRecord
export type SignedCapability = dbc.capability.v1.SignedCapability

/** The finest cell level a record names (r5 ≈ 5.6° ≈ 600 km); see index.ts for the index levels. */
export const RECORD_CELL_LEVEL = 5
/** Largest encoded record accepted: bounds what a peer can make us hold. */
export const MAX_RECORD_BYTES = 8192
/** Records may not claim to live longer than this. */
export const MAX_RECORD_LIFETIME_MS = 24 * 3_600_000
/** Tolerated clock difference for `issued_at` in the future. */
export const CLOCK_SKEW_MS = 60_000

const SIGN_DOMAIN = new TextEncoder().encode('dbc/capability/v1\0')

export interface GpuInit { model: string, count: number, memoryMib: number, declared?: boolean }

export interface CapabilityInit {
  peerId: Uint8Array
  addrs?: Uint8Array[]
  gpus?: GpuInit[]
  cpuCores: number
  memoryMib: number
  priceGpuHour?: number
  priceCpuHour?: number
  lat: number
  lon: number
  executors?: string[]
  software?: string[]
  perfScore?: number
  issuedAt: number
  ttlMs: number
  seq: number
}

/** "GeForce RTX 4090" → "RTX4090", "a100-80gb" → "A10080GB": upper-case, brand words and separators dropped. */
export function normaliseGpuModel (model: string): string {
  return model.toUpperCase().replace(/\b(NVIDIA|GEFORCE|AMD|RADEON|TESLA)\b/g, '').replace(/[^A-Z0-9]/g, '')
}

export function buildCapabilityRecord (init: CapabilityInit): CapabilityRecord {
  if (!isValidLatLon(init.lat, init.lon)) throw new RangeError(`location ${init.lat},${init.lon} is not a valid latitude,longitude`)
  if (init.ttlMs <= 0 || init.ttlMs > MAX_RECORD_LIFETIME_MS) throw new RangeError(`record ttl ${init.ttlMs} ms is outside (0, ${MAX_RECORD_LIFETIME_MS}]`)
  return dbc.capability.v1.CapabilityRecord.create({
    peerId: init.peerId,
    addrs: init.addrs ?? [],
    gpus: (init.gpus ?? []).map(g => ({ model: normaliseGpuModel(g.model), count: g.count, memoryMib: g.memoryMib, declared: g.declared ?? false })),
    cpuCores: init.cpuCores,
    memoryMib: init.memoryMib,
    priceGpuHour: init.priceGpuHour ?? 0,
    priceCpuHour: init.priceCpuHour ?? 0,
    latE4: toE4(init.lat),
    lonE4: toE4(init.lon),
    cell: cellIdOf(init.lat, init.lon, RECORD_CELL_LEVEL),
    executors: [...new Set(init.executors ?? [])].sort(),
    software: [...new Set(init.software ?? [])].sort(),
    perfScore: init.perfScore ?? 0,
    issuedAt: init.issuedAt,
    expiresAt: init.issuedAt + init.ttlMs,
    seq: init.seq
  })
}

function signedMessage (recordBytes: Uint8Array): Uint8Array {
  const m = new Uint8Array(SIGN_DOMAIN.length + recordBytes.length)
  m.set(SIGN_DOMAIN); m.set(recordBytes, SIGN_DOMAIN.length)
  return m
}

export type SignFn = (secretKey: Uint8Array, message: Uint8Array) => Uint8Array
export type VerifyFn = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean

/** Encodes and signs a record; `secretKey` is the 32-byte Ed25519 seed of record.peerId. */
export function signCapabilityRecord (record: CapabilityRecord, secretKey: Uint8Array, sign: SignFn = signBytes): SignedCapability {
  const bytes = dbc.capability.v1.CapabilityRecord.encode(record).finish()
  const seed = secretKey.length === 64 ? secretKey.subarray(0, 32) : secretKey
  return dbc.capability.v1.SignedCapability.create({ record: bytes, signature: sign(seed, signedMessage(bytes)) })
}

export function encodeSignedCapability (s: SignedCapability): Uint8Array {
  return dbc.capability.v1.SignedCapability.encode(s).finish()
}

export type CapabilityRejection = 'malformed' | 'oversized' | 'forged' | 'expired' | 'not-yet-valid'

export type VerifiedCapability =
  | { ok: true, record: CapabilityRecord, signed: SignedCapability }
  | { ok: false, reason: CapabilityRejection, detail: string }

export interface VerifyCapabilityOptions {
  now: number
  /** Signature check; defaults to @noble (pure). The runtime passes the faster node:crypto one. */
  verify?: VerifyFn
  /** When given, the record must belong to this peer (e.g. the peer that sent it to us). */
  expectPeer?: Uint8Array
}

/** Decodes (bounded), checks signature, lifetime and shape. Never throws. */
export function verifyCapability (input: Uint8Array | SignedCapability, opts: VerifyCapabilityOptions): VerifiedCapability {
  let signed: SignedCapability
  if (input instanceof Uint8Array) {
    if (input.length > MAX_RECORD_BYTES + 128) return { ok: false, reason: 'oversized', detail: `${input.length} bytes` }
    try { signed = dbc.capability.v1.SignedCapability.decode(input) } catch (err) { return { ok: false, reason: 'malformed', detail: (err as Error).message } }
  } else {
    signed = input
  }
  if (signed.record.length > MAX_RECORD_BYTES) return { ok: false, reason: 'oversized', detail: `record of ${signed.record.length} bytes` }
  let record: CapabilityRecord
  try { record = dbc.capability.v1.CapabilityRecord.decode(signed.record) } catch (err) { return { ok: false, reason: 'malformed', detail: (err as Error).message } }
  const key = ed25519KeyFromPeerIdBytes(record.peerId)
  if (key === undefined) return { ok: false, reason: 'malformed', detail: 'peer id carries no Ed25519 key' }
  if (opts.expectPeer !== undefined && !sameBytes(opts.expectPeer, record.peerId)) return { ok: false, reason: 'forged', detail: 'record names another peer' }
  if (!(opts.verify ?? verifyBytes)(key, signedMessage(signed.record), signed.signature)) return { ok: false, reason: 'forged', detail: 'signature does not verify against the peer id' }
  if (!Number.isFinite(record.expiresAt) || !Number.isFinite(record.issuedAt) || record.expiresAt <= record.issuedAt) return { ok: false, reason: 'malformed', detail: 'bad issued/expiry times' }
  if (record.expiresAt - record.issuedAt > MAX_RECORD_LIFETIME_MS) return { ok: false, reason: 'malformed', detail: 'lifetime longer than allowed' }
  if (record.expiresAt <= opts.now) return { ok: false, reason: 'expired', detail: `expired ${opts.now - record.expiresAt} ms ago` }
  if (record.issuedAt > opts.now + CLOCK_SKEW_MS) return { ok: false, reason: 'not-yet-valid', detail: 'issued in the future' }
  if (!isValidLatLon(record.latE4 / 1e4, record.lonE4 / 1e4)) return { ok: false, reason: 'malformed', detail: 'location out of range' }
  return { ok: true, record, signed }
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
