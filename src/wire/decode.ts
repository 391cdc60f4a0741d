// Bounded protobuf decoding: a decode never throws, and repeated fields are capped so one
// small frame cannot expand into a huge object graph.
import { WireError } from '../errors.js'

export interface Decodable<T> { decode: (reader: Uint8Array) => T }

export type Decoded<T> = { ok: true, value: T } | { ok: false, error: WireError }

export interface DecodeLimits {
  /** Largest allowed length of any repeated field, at any depth (default 4096). */
  maxRepeated?: number
  /** Deepest allowed nesting of messages (default 16). */
  maxDepth?: number
}

export function decodeMessage<T> (type: Decodable<T>, bytes: Uint8Array, limits: DecodeLimits = {}): Decoded<T> {
  let value: T
  try {
    value = type.decode(bytes)
  } catch (err) {
    return { ok: false, error: new WireError('MALFORMED_MESSAGE', `message does not decode: ${(err as Error).message}`, { cause: err }) }
  }
  const problem = checkShape(value, limits.maxRepeated ?? 4096, limits.maxDepth ?? 16, 0, '')
  if (problem !== undefined) return { ok: false, error: new WireError('MESSAGE_LIMIT', problem) }
  return { ok: true, value }
}

function checkShape (v: unknown, maxRepeated: number, maxDepth: number, depth: number, path: string): string | undefined {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return undefined
  if (depth > maxDepth) return `message nesting at ${path || 'root'} exceeds ${maxDepth}`
  if (Array.isArray(v)) {
    if (v.length > maxRepeated) return `repeated field ${path} has ${v.length} items, limit ${maxRepeated}`
    for (let i = 0; i < v.length; i++) {
      const p = checkShape(v[i], maxRepeated, maxDepth, depth + 1, `${path}[${i}]`)
      if (p !== undefined) return p
    }
    return undefined
  }
  for (const [k, x] of Object.entries(v)) {
    const p = checkShape(x, maxRepeated, maxDepth, depth + 1, path === '' ? k : `${path}.${k}`)
    if (p !== undefined) return p
  }
  return undefined
}
