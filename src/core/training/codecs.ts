// Compression codecs for the all-reduce: pure functions from a Float32Array to bytes and back.
// Every codec is lossy except fp32; the error bounds are stated per codec and tested.
// Top-k keeps its error-feedback residual as explicit input and output (no hidden state),
// so the caller decides where the residual lives and a replay from the same inputs is exact.

export type CodecKind = 'fp32' | 'fp16' | 'int8' | 'topk'

/** Wire ids (SliceChunk.codec). */
export const CODEC_IDS: Record<CodecKind, number> = { fp32: 0, fp16: 1, int8: 2, topk: 3 }
const KIND_BY_ID: CodecKind[] = ['fp32', 'fp16', 'int8', 'topk']

export interface CodecSpec {
  kind: CodecKind
  /** int8: values per block, each block carries its own float32 scale (default 256). */
  blockSize?: number
  /** topk: share of entries sent per vector, in (0, 1] (default 0.05). */
  topkFraction?: number
}

export const DEFAULT_INT8_BLOCK = 256
export const DEFAULT_TOPK_FRACTION = 0.05

export function codecKindFromId (id: number): CodecKind | undefined {
  return KIND_BY_ID[id]
}

export interface EncodeResult {
  data: Uint8Array
  /** topk only: the part of (values + residual) that was not sent, to add next time. */
  residual?: Float32Array
}

/**
 * Encodes `values` with the codec. For topk, `residual` (same length, or absent for zeros)
 * is added before selection and the new residual is returned; other codecs ignore it.
 */
export function encodeVector (spec: CodecSpec, values: Float32Array, residual?: Float32Array): EncodeResult {
  switch (spec.kind) {
    case 'fp32': return { data: encodeFp32(values) }
    case 'fp16': return { data: encodeFp16(values) }
    case 'int8': return { data: encodeInt8(values, spec.blockSize ?? DEFAULT_INT8_BLOCK) }
    case 'topk': return encodeTopK(values, residual, topkCount(values.length, spec.topkFraction ?? DEFAULT_TOPK_FRACTION))
  }
}

/** Decodes `length` values; throws RangeError when the bytes do not fit the codec. */
export function decodeVector (spec: CodecSpec, data: Uint8Array, length: number): Float32Array {
  switch (spec.kind) {
    case 'fp32': return decodeFp32(data, length)
    case 'fp16': return decodeFp16(data, length)
    case 'int8': return decodeInt8(data, length, spec.blockSize ?? DEFAULT_INT8_BLOCK)
    case 'topk': return decodeTopK(data, length)
  }
}

/** Bytes the codec produces for `length` values (topk: at its nominal k). */
export function encodedSize (spec: CodecSpec, length: number): number {
  switch (spec.kind) {
    case 'fp32': return length * 4
    case 'fp16': return length * 2
    case 'int8': return Math.ceil(length / (spec.blockSize ?? DEFAULT_INT8_BLOCK)) * 4 + length
    case 'topk': return 4 + topkCount(length, spec.topkFraction ?? DEFAULT_TOPK_FRACTION) * 8
  }
}

export function topkCount (length: number, fraction: number): number {
  if (length === 0) return 0
  return Math.min(length, Math.max(1, Math.ceil(length * fraction)))
}

// ---- fp32 -------------------------------------------------------------------------------

// Typed-array copies are ~10x faster than DataView loops; the wire is little-endian, so they
// are used only on little-endian hosts (all that Node runs on in practice).
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function encodeFp32 (values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(Float32Array.from(values).buffer)
  const out = new Uint8Array(values.length * 4)
  const view = new DataView(out.buffer)
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true)
  return out
}

function decodeFp32 (data: Uint8Array, length: number): Float32Array {
  if (data.length !== length * 4) throw new RangeError(`fp32: ${data.length} bytes for ${length} values`)
  if (LITTLE_ENDIAN) {
    const copy = new Uint8Array(length * 4)
    copy.set(data)
    return new Float32Array(copy.buffer)
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) out[i] = view.getFloat32(i * 4, true)
  return out
}

// ---- fp16 (IEEE 754 half, round to nearest even, overflow saturates to ±65504) ------------

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

export function toHalf (value: number): number {
  f32[0] = value
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00) // NaN / Inf
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7bff // saturate instead of Inf: a model must not blow up
  if (e <= 0) {
    if (e < -10) return sign // underflow to zero
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++
  if ((half & 0x7c00) === 0x7c00) half = 0x7bff
  return sign | half
}

export function fromHalf (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

function encodeFp16 (values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2)
  for (let i = 0; i < values.length; i++) {
    const h = toHalf(values[i])
    out[i * 2] = h & 0xff
    out[i * 2 + 1] = h >>> 8
  }
  return out
}

function decodeFp16 (data: Uint8Array, length: number): Float32Array {
  if (data.length !== length * 2) throw new RangeError(`fp16: ${data.length} bytes for ${length} values`)
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) out[i] = fromHalf(data[i * 2] | (data[i * 2 + 1] << 8))
  return out
}

// ---- int8 with a float32 scale per block: |error| <= scale / 2 = max|block| / 254 ----------

function encodeInt8 (values: Float32Array, block: number): Uint8Array {
  const blocks = Math.ceil(values.length / block)
  const out = new Uint8Array(blocks * 4 + values.length)
  const view = new DataView(out.buffer)
  for (let b = 0; b < blocks; b++) {
    const start = b * block
    const end = Math.min(values.length, start + block)
    let max = 0
    for (let i = start; i < end; i++) { const a = Math.abs(values[i]); if (a > max) max = a }
    const scale = max / 127
    view.setFloat32(b * 4, scale, true)
    const inv = scale === 0 ? 0 : 1 / scale
    for (let i = start; i < end; i++) {
      const q = Math.max(-127, Math.min(127, Math.round(values[i] * inv)))
      out[blocks * 4 + i] = q & 0xff
    }
  }
  return out
}

function decodeInt8 (data: Uint8Array, length: number, block: number): Float32Array {
  const blocks = Math.ceil(length / block)
  if (data.length !== blocks * 4 + length) throw new RangeError(`int8: ${data.length} bytes for ${length} values`)
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const out = new Float32Array(length)
  for (let b = 0; b < blocks; b++) {
    const scale = view.getFloat32(b * 4, true)
    const end = Math.min(length, (b + 1) * block)
    for (let i = b * block; i < end; i++) {
      const q = data[blocks * 4 + i]
      out[i] = (q > 127 ? q - 256 : q) * scale
    }
  }
  return out
}

// ---- top-k with error feedback: [count u32][index u32 × count][value f32 × count] ----------

function encodeTopK (values: Float32Array, residual: Float32Array | undefined, k: number): EncodeResult {
  const n = values.length
  if (residual !== undefined && residual.length !== n) throw new RangeError(`topk: residual has ${residual.length} values, vector ${n}`)
  const corrected = new Float32Array(n)
  for (let i = 0; i < n; i++) corrected[i] = values[i] + (residual?.[i] ?? 0)
  const threshold = kthLargestMagnitude(corrected, k)
  const picked = new Uint32Array(k)
  let count = 0
  // Entries strictly above the threshold first, then ties, so at most k go out.
  for (let pass = 0; pass < 2 && count < k; pass++) {
    for (let i = 0; i < n && count < k; i++) {
      const a = Math.abs(corrected[i])
      if (a === 0 || Number.isNaN(a)) continue
      if (pass === 0 ? a > threshold : a === threshold) picked[count++] = i
    }
  }
  const idx = picked.subarray(0, count).sort()
  const out = new Uint8Array(4 + count * 8)
  const view = new DataView(out.buffer)
  view.setUint32(0, count, true)
  const next = corrected
  for (let j = 0; j < count; j++) {
    const i = idx[j]
    view.setUint32(4 + j * 4, i, true)
    view.setFloat32(4 + count * 4 + j * 4, corrected[i], true)
    next[i] = 0 // sent exactly (float32 in, float32 out): the residual keeps only what was not sent
  }
  return { data: out, residual: next }
}

function decodeTopK (data: Uint8Array, length: number): Float32Array {
  if (data.length < 4) throw new RangeError('topk: missing count')
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const count = view.getUint32(0, true)
  if (count > length || data.length !== 4 + count * 8) throw new RangeError(`topk: ${data.length} bytes for ${count} entries of ${length}`)
  const out = new Float32Array(length)
  for (let j = 0; j < count; j++) {
    const i = view.getUint32(4 + j * 4, true)
    if (i >= length) throw new RangeError(`topk: index ${i} out of ${length}`)
    out[i] = view.getFloat32(4 + count * 4 + j * 4, true)
  }
  return out
}

/** The k-th largest |v| (quickselect on a copy, O(n) expected, deterministic pivots). */
export function kthLargestMagnitude (values: Float32Array, k: number): number {
  const n = values.length
  if (n === 0 || k <= 0) return Infinity
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = Math.abs(values[i])
  const target = Math.min(k, n) - 1 // index in descending order
  let lo = 0
  let hi = n - 1
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i] > pivot) i++
      while (a[j] < pivot) j--
      if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j-- }
    }
    if (target <= j) hi = j
    else if (target >= i) lo = i
    else return a[target]
  }
  return a[target]
}
