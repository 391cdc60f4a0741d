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
  const problem = checkShape(value, limits.maxRepeated ?? 4096, limits.maxDepth ?? 16)
  if (problem !== undefined) return { ok: false, error: new WireError('MESSAGE_LIMIT', problem) }
  return { ok: true, value }
}

/** Walks the decoded value; the path of a violation is built only when there is one (hot path). */
function checkShape (v: unknown, maxRepeated: number, maxDepth: number): string | undefined {
  const at: Array<string | number> = []
  const problem = walk(v, maxRepeated, maxDepth, 0, at)
  if (problem === undefined) return undefined
  const path = at.reverse().map((p, i) => typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`).join('')
  return problem === 'depth' ? `message nesting at ${path || 'root'} exceeds ${maxDepth}` : `repeated field ${path} has ${problem} items, limit ${maxRepeated}`
}

/** undefined when fine; else 'depth' or the offending length, with the path pushed innermost first. */
function walk (v: unknown, maxRepeated: number, maxDepth: number, depth: number, at: Array<string | number>): 'depth' | number | undefined {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return undefined
  if (depth > maxDepth) return 'depth'
  if (Array.isArray(v)) {
    if (v.length > maxRepeated) return v.length
    for (let i = 0; i < v.length; i++) {
      const p = walk(v[i], maxRepeated, maxDepth, depth + 1, at)
      if (p !== undefined) { at.push(i); return p }
    }
    return undefined
  }
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) {
    const p = walk(o[k], maxRepeated, maxDepth, depth + 1, at)
    if (p !== undefined) { at.push(k); return p }
  }
  return undefined
}
