// Hand-assembled WebAssembly modules for tests (no WAT toolchain here): a tiny binary encoder and the
// hostile modules of issue 12 (multi-memory bomb, table bomb, import outside the ABI, huge data segment).

import { writeU32 } from '../../../src/core/compute/wasm-memory.js'

export const leb = writeU32

export const name = (s: string): number[] => [...leb(s.length), ...new TextEncoder().encode(s)]
export const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()]
export const section = (id: number, content: number[]): number[] => [id, ...leb(content.length), ...content]
export const limits = (min: number, max?: number): number[] => max === undefined ? [0x00, ...leb(min)] : [0x01, ...leb(min), ...leb(max)]

export function module (...sections: number[][]): Uint8Array {
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()])
}

const FUNC_VOID = [0x60, 0x00, 0x00] // () -> ()
const FUNC_ABI = [0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f] // (i32, i32) -> i32

/**
 * A module with `memories` memories of (min, max) pages, each exported ("memory", "m1", ...), plus a
 * valid ABI (alloc returns 16; run returns a pointer to an empty output at 0). Extra sections can be added.
 */
export function withMemories (memories: number, min = 1, max?: number, extra: { tables?: number[][], imports?: number[][], data?: number[][] } = {}): Uint8Array {
  const types = section(1, vec([FUNC_ABI, [0x60, 0x01, 0x7f, 0x01, 0x7f]]))
  const imports = extra.imports === undefined ? [] : section(2, vec(extra.imports))
  const funcs = section(3, vec([[1], [0]])) // alloc: type 1, run: type 0
  const tables = extra.tables === undefined ? [] : section(4, vec(extra.tables))
  const mems = section(5, vec(Array.from({ length: memories }, () => limits(min, max))))
  const importedFuncs = (extra.imports ?? []).length // only function imports (funcImport) are used here
  const exportsList = [
    [...name('alloc'), 0x00, ...leb(importedFuncs)],
    [...name('run'), 0x00, ...leb(importedFuncs + 1)],
    ...Array.from({ length: memories }, (_, i) => [...name(i === 0 ? 'memory' : `m${i}`), 0x02, ...leb(i)])
  ]
  const exports = section(7, vec(exportsList))
  // alloc: i32.const 16; run: i32.const 0 (memory is zeroed, so the output length there is 0)
  const code = section(10, vec([[4, 0, 0x41, 16, 0x0b], [4, 0, 0x41, 0, 0x0b]]))
  const data = extra.data === undefined ? [] : section(11, vec(extra.data))
  return module(types, imports, funcs, tables, mems, exports, code, data)
}

/** An active data segment of `bytes` bytes at offset 0 of memory 0. */
export function dataSegment (bytes: number): number[] {
  return [0x00, 0x41, 0x00, 0x0b, ...leb(bytes), ...new Array<number>(bytes).fill(0x61)]
}

/** A function import entry (type 0). */
export const funcImport = (mod: string, field: string): number[] => [...name(mod), ...name(field), 0x00, 0x00]
/** A funcref table entry of (min, max) elements. */
export const table = (min: number, max?: number): number[] => [0x70, ...limits(min, max)]

/** withMemories(1, 1, maxPages) plus one active data segment of `bytes` bytes, built without large arrays. */
export function withHugeData (bytes: number, maxPages: number): Uint8Array {
  const head = withMemories(1, 1, maxPages)
  const seg = [0x00, 0x41, 0x00, 0x0b, ...leb(bytes)]
  const content = [...leb(1), ...seg]
  const header = [11, ...leb(content.length + bytes)]
  const out = new Uint8Array(head.length + header.length + content.length + bytes)
  out.set(head, 0)
  out.set(header, head.length)
  out.set(content, head.length + header.length)
  out.fill(0x61, head.length + header.length + content.length)
  return out
}
