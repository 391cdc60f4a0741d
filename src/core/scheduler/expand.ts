// Job → tasks: one task per list item, range value, file partition or file. Pure: a file
// partition is a byte range descriptor; the runtime reads the bytes when it sends the task.
import type { Manifest } from './manifest.js'

export type TaskInputSpec =
  | { kind: 'value', value: unknown }
  | { kind: 'file-range', path: string, offset: number, length: number }
  | { kind: 'file', path: string }

/** How many tasks the manifest makes. `fileSize` is needed for `files.path` inputs. */
export function taskCount (m: Manifest, fileSize?: number): number {
  const i = m.inputs
  if (i.list !== undefined) return i.list.length
  if (i.range !== undefined) return Math.floor((i.range.to - i.range.from) / i.range.step + 1e-9) + 1
  const f = i.files!
  if (f.paths !== undefined) return f.paths.length
  if (fileSize === undefined) throw new RangeError('taskCount of a file-partition job needs the file size')
  if (f.partitions !== undefined) return Math.max(1, Math.min(f.partitions, fileSize))
  return Math.max(1, Math.ceil(fileSize / f.chunkBytes!))
}

/** The input of task `index` (0-based). */
export function taskInputSpec (m: Manifest, index: number, fileSize?: number): TaskInputSpec {
  const i = m.inputs
  if (i.list !== undefined) return { kind: 'value', value: i.list[index] }
  if (i.range !== undefined) {
    // Rounded to the step's decimals so 0.1 steps give 0.3, not 0.30000000000000004.
    const v = i.range.from + index * i.range.step
    return { kind: 'value', value: Number(v.toPrecision(12)) }
  }
  const f = i.files!
  if (f.paths !== undefined) return { kind: 'file', path: f.paths[index] }
  const size = fileSize ?? 0
  const n = taskCount(m, size)
  if (f.chunkBytes !== undefined) {
    const offset = index * f.chunkBytes
    return { kind: 'file-range', path: f.path!, offset, length: Math.min(f.chunkBytes, size - offset) }
  }
  const offset = Math.floor((index * size) / n)
  const end = Math.floor(((index + 1) * size) / n)
  return { kind: 'file-range', path: f.path!, offset, length: end - offset }
}

const encoder = new TextEncoder()

export type InputEncoding = 'json' | 'f64' | 'utf8'

/**
 * Bytes of a value input as the executor sees them: JSON text (default), a float64 array
 * (a number or an array of numbers, little-endian; what the wasm ABI modules read), or
 * UTF-8 text (a string as is, anything else as JSON).
 */
export function encodeValueInput (value: unknown, encoding: InputEncoding = 'json'): Uint8Array {
  if (encoding === 'f64') {
    const xs = (Array.isArray(value) ? value : [value]).map(Number)
    return new Uint8Array(new Float64Array(xs).buffer)
  }
  if (encoding === 'utf8' && typeof value === 'string') return encoder.encode(value)
  return encoder.encode(JSON.stringify(value ?? null))
}

/** Expected input bytes per task, for transfer-time prediction. */
export function expectedInputBytes (m: Manifest, fileSize?: number): number {
  if (m.task.inputBytes !== undefined) return m.task.inputBytes
  const i = m.inputs
  if (i.files?.path !== undefined && fileSize !== undefined) return fileSize / taskCount(m, fileSize)
  if (i.list !== undefined) return Math.min(1 << 20, encodeValueInput(i.list[0]).length)
  return 32
}

/**
 * The largest input one task of the job carries, bytes: what a lease request announces, since a
 * provider limits the holder's task frames to it (expectedInputBytes is the typical one, for
 * timing). `fileSizes`: the sizes of `files.paths`, in order (unknown ones count as `fallback`).
 */
export function largestInputBytes (m: Manifest, fileSize?: number, fileSizes?: readonly number[], fallback = 16 * 1024 * 1024): number {
  const i = m.inputs
  if (i.list !== undefined) {
    let most = 0
    for (const v of i.list) most = Math.max(most, encodeValueInput(v, m.task.inputEncoding).length)
    return most
  }
  // a range value is one number: at most ~24 bytes of JSON, 8 as f64
  if (i.range !== undefined) return 32
  const f = i.files!
  if (f.paths !== undefined) return f.paths.length === 0 ? 0 : Math.max(...f.paths.map((_, k) => fileSizes?.[k] ?? fallback))
  if (fileSize === undefined) return fallback
  if (f.chunkBytes !== undefined) return Math.min(f.chunkBytes, fileSize)
  return Math.ceil(fileSize / taskCount(m, fileSize))
}
