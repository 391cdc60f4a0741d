import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { DEFAULT_MODULE_LIMITS, validateModule, WasmLimitError } from '../../../../src/core/compute/wasm-validate.js'
import { WasmFormatError } from '../../../../src/core/compute/wasm-memory.js'
import { funcImport, leb, limits as lim, module, name, section, table, vec, withHugeData, withMemories } from '../../compute/wasm-bytes.js'

const WA = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object, Instance: new (m: object, i?: object) => { exports: Record<string, { buffer?: ArrayBuffer }> } } }).WebAssembly
const CAP_PAGES = 16 // 1 MiB
const limits = { ...DEFAULT_MODULE_LIMITS, memoryCapPages: CAP_PAGES }
const refused = (b: Uint8Array, re: RegExp): void => {
  assert.throws(() => validateModule(b, limits), (e: Error) => e instanceof WasmLimitError && re.test(e.message))
}
const mod = (f: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../../src/compute/modules/${f}.wasm`, import.meta.url)))

test('the repo\'s modules pass, with their mode and imports', () => {
  for (const f of ['square', 'mandelbrot', 'loop', 'membomb']) assert.is(validateModule(mod(f), limits).mode, 'abi', f)
  const w = validateModule(mod('wasi-upper'), limits)
  assert.is(w.mode, 'wasi')
  assert.ok(w.imports.some(i => i.name === 'path_open'))
  assert.is(validateModule(withMemories(1, 1, 4), limits).memories, 1)
})

test('the multi-memory bomb: 4 memories that V8 would instantiate to 4x the cap are refused', () => {
  const bomb = withMemories(4, CAP_PAGES, CAP_PAGES)
  // the attack is real: V8 accepts it and gives each memory the full cap
  const inst = new WA.Instance(new WA.Module(bomb))
  const total = ['memory', 'm1', 'm2', 'm3'].reduce((n, k) => n + (inst.exports[k].buffer?.byteLength ?? 0), 0)
  assert.is(total, 4 * CAP_PAGES * 65536)
  refused(bomb, /too many memories \(declared \+ imported\): 4, above the limit of 1/)
})

test('1,000 memories are refused without compiling anything', () => {
  refused(withMemories(1000), /too many memories.*1000, above the limit of 1/)
})

test('an imported memory counts with the declared ones', () => {
  const b = withMemories(1, 1, 2, { imports: [[...name('env'), ...name('memory'), 0x02, ...lim(1, 2)]] })
  refused(b, /too many memories.*2, above the limit of 1/)
})

test('a memory that needs more than the cap to start is refused', () => {
  refused(withMemories(1, CAP_PAGES + 1), /memory 0 needs too much memory to start: 1\.1 MiB, above the limit of the task's cap of 1 MiB/)
})

test('table bombs: too many tables, a huge table, a table without a maximum', () => {
  refused(withMemories(1, 1, 1, { tables: [table(1, 1), table(1, 1)] }), /too many tables: 2, above the limit of 1/)
  refused(withMemories(1, 1, 1, { tables: [table(10_000_000, 10_000_000)] }), /table 0 starts with too many elements: 10000000, above the limit of 100000/)
  refused(withMemories(1, 1, 1, { tables: [table(1, 10_000_000)] }), /table 0 may grow to too many elements: 10000000/)
  refused(withMemories(1, 1, 1, { tables: [table(1)] }), /table 0 declares no maximum size/)
  assert.is(validateModule(withMemories(1, 1, 1, { tables: [table(100, 100)] }), limits).tables, 1)
})

test('imports outside the ABI are refused, naming the import', () => {
  refused(withMemories(1, 1, 1, { imports: [funcImport('env', 'clock')] }), /imports env\.clock \(function\), which is outside the task ABI/)
  refused(withMemories(1, 1, 1, { imports: [funcImport('wasi_snapshot_preview1', 'not_a_call')] }), /wasi_snapshot_preview1\.not_a_call/)
  refused(withMemories(1, 1, 1, { imports: [[...name('env'), ...name('tbl'), 0x01, 0x70, ...lim(1, 1)]] }), /env\.tbl \(table\)/)
  refused(withMemories(1, 1, 1, { imports: [[...name('env'), ...name('g'), 0x03, 0x7f, 0x00]] }), /env\.g \(global\)/)
  assert.is(validateModule(withMemories(1, 1, 1, { imports: [funcImport('env', 'progress'), funcImport('wasi_snapshot_preview1', 'fd_write')] }), limits).mode, 'wasi')
})

test('a huge data segment is refused: above the memory cap, or above the module size limit', () => {
  refused(withHugeData(2 * 1024 * 1024, CAP_PAGES), /data segments are too large: 2\.0 MiB, above the limit of the task's memory cap of 1 MiB/)
  const big = { ...DEFAULT_MODULE_LIMITS, memoryCapPages: 65536 }
  assert.throws(() => validateModule(withHugeData(9 * 1024 * 1024, 65536), big), /the module is too large: 9\.0 MiB, above the limit of 8 MiB/)
  refused(withMemories(1, 1, 1, { data: Array.from({ length: 1001 }, () => [0x01, 0x00]) }), /too many data segments: 1001, above the limit of 1000/)
})

test('counts of globals, exports and functions are bounded', () => {
  const globals = section(6, vec(Array.from({ length: 1001 }, () => [0x7f, 0x00, 0x41, 0x00, 0x0b])))
  refused(module(globals), /too many globals: 1001/)
  const exports = section(7, [...leb(1001)])
  refused(module(exports), /too many exports: 1001/)
  refused(module(section(3, [...leb(100_001)])), /too many functions: 100001/)
})

test('malformed modules are format errors, not limit errors', () => {
  assert.throws(() => validateModule(new Uint8Array([1, 2, 3]), limits), (e: Error) => e instanceof WasmFormatError && !(e instanceof WasmLimitError))
  assert.throws(() => validateModule(module(section(5, [1])), limits), (e: Error) => e instanceof WasmFormatError)
  assert.throws(() => validateModule(module(section(5, vec([lim(1)])), section(5, vec([lim(1)]))), limits), /section 5 appears more than once/)
})

test.run()
