// Caps a WebAssembly module's memory by rewriting the limits in its binary, so memory.grow
// fails (and the module traps) at the cap instead of eating the provider's RAM. Also reads an
// imported memory's limits, so the host can supply one that is capped the same way.

export const WASM_PAGE_BYTES = 65536

export class WasmFormatError extends Error {
  override name = 'WasmFormatError'
}

export interface Cursor { pos: number }

export function readU32 (b: Uint8Array, c: Cursor): number {
  let result = 0
  let shift = 0
  for (;;) {
    if (c.pos >= b.length) throw new WasmFormatError('unexpected end of module')
    const byte = b[c.pos++]
    result += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) break
    shift += 7
    if (shift > 63) throw new WasmFormatError('LEB128 number too long')
  }
  return result
}

/** Unsigned LEB128 encoding (the module format's integers). */
export function writeU32 (n: number): number[] {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return out
}

export interface MemoryLimits { minPages: number, maxPages?: number }

export interface Limits extends MemoryLimits { start: number, end: number, flags: number }

export function readLimits (b: Uint8Array, c: Cursor): Limits {
  const start = c.pos
  const flags = b[c.pos++]
  if ((flags & ~0x03) !== 0) throw new WasmFormatError(`memory limits flags 0x${flags.toString(16)} (64-bit memory) are not supported`)
  const minPages = readU32(b, c)
  const maxPages = (flags & 0x01) !== 0 ? readU32(b, c) : undefined
  return { start, end: c.pos, flags, minPages, maxPages }
}

export function skipName (b: Uint8Array, c: Cursor): string {
  const len = readU32(b, c)
  const s = String.fromCharCode(...b.subarray(c.pos, c.pos + len))
  c.pos += len
  return s
}

export interface Section { id: number, start: number, contentStart: number, end: number }

export function sections (b: Uint8Array): Section[] {
  if (b.length < 8 || b[0] !== 0x00 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) throw new WasmFormatError('not a WebAssembly module (bad magic bytes)')
  if (b[4] !== 1 || b[5] !== 0 || b[6] !== 0 || b[7] !== 0) throw new WasmFormatError('unsupported WebAssembly version')
  const out: Section[] = []
  const c: Cursor = { pos: 8 }
  while (c.pos < b.length) {
    const start = c.pos
    const id = b[c.pos++]
    const size = readU32(b, c)
    const contentStart = c.pos
    c.pos += size
    if (c.pos > b.length) throw new WasmFormatError(`section ${id} runs past the end of the module`)
    out.push({ id, start, contentStart, end: c.pos })
  }
  return out
}

/** Limits of a memory the module imports (module, field), if it imports one. */
export function importedMemory (b: Uint8Array): (MemoryLimits & { module: string, field: string }) | undefined {
  const imp = sections(b).find(s => s.id === 2)
  if (imp === undefined) return undefined
  const c: Cursor = { pos: imp.contentStart }
  const n = readU32(b, c)
  for (let i = 0; i < n; i++) {
    const module = skipName(b, c)
    const field = skipName(b, c)
    const kind = b[c.pos++]
    if (kind === 0) readU32(b, c)
    else if (kind === 1) { c.pos++; readLimits(b, c) } else if (kind === 2) {
      const l = readLimits(b, c)
      return { module, field, minPages: l.minPages, maxPages: l.maxPages }
    } else if (kind === 3) c.pos += 2
    else if (kind === 4) { c.pos++; readU32(b, c) } else throw new WasmFormatError(`unknown import kind ${kind}`)
  }
  return undefined
}

/**
 * Returns a copy of the module whose defined memories have maximum <= maxPages (the module is
 * unchanged when it already is). Throws WasmFormatError when a memory needs more than the cap
 * just to start.
 */
export function capMemory (b: Uint8Array, maxPages: number): Uint8Array {
  const mem = sections(b).find(s => s.id === 5)
  if (mem === undefined) return b
  const c: Cursor = { pos: mem.contentStart }
  const n = readU32(b, c)
  const body: number[] = [...writeU32(n)]
  let changed = false
  for (let i = 0; i < n; i++) {
    const l = readLimits(b, c)
    if (l.minPages > maxPages) throw new WasmFormatError(`the module needs ${l.minPages * 64} KiB of memory to start, above the cap of ${maxPages * 64} KiB`)
    const max = l.maxPages === undefined ? maxPages : Math.min(l.maxPages, maxPages)
    if (max !== l.maxPages) changed = true
    body.push((l.flags & 0x02) | 0x01, ...writeU32(l.minPages), ...writeU32(max))
  }
  if (!changed) return b
  const rest = b.subarray(c.pos, mem.end)
  const content = [...body, ...rest]
  const header = [5, ...writeU32(content.length)]
  const out = new Uint8Array(mem.start + header.length + content.length + (b.length - mem.end))
  out.set(b.subarray(0, mem.start), 0)
  out.set(header, mem.start)
  out.set(content, mem.start + header.length)
  out.set(b.subarray(mem.end), mem.start + header.length + content.length)
  return out
}

/** Defined-memory limits (first memory), for tests and diagnostics. */
export function definedMemory (b: Uint8Array): MemoryLimits | undefined {
  const mem = sections(b).find(s => s.id === 5)
  if (mem === undefined) return undefined
  const c: Cursor = { pos: mem.contentStart }
  if (readU32(b, c) === 0) return undefined
  const l = readLimits(b, c)
  return { minPages: l.minPages, maxPages: l.maxPages }
}
