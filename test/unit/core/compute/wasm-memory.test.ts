import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { capMemory, definedMemory, importedMemory, WasmFormatError } from '../../../../src/core/compute/wasm-memory.js'

// The project's TS lib has no WebAssembly types (no DOM): a minimal local view of the API.
interface Mem { grow: (pages: number) => number }
const WA = (globalThis as unknown as { WebAssembly: { compile: (b: Uint8Array) => Promise<object>, instantiate: (m: object) => Promise<{ exports: Record<string, unknown> }> } }).WebAssembly
const square = new Uint8Array(readFileSync(new URL('../../../../src/compute/modules/square.wasm', import.meta.url)))

// (module (import "env" "memory" (memory 2 100)) (func (export "run")))
const importing = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 16, 1, 3, 101, 110, 118, 6, 109, 101, 109, 111, 114, 121, 2, 1, 2, 100, 3, 2, 1, 0, 7, 7, 1, 3, 114, 117, 110, 0, 0, 10, 4, 1, 2, 0, 11])
// (module (memory 3) (export "memory" (memory 0)))
const unbounded = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 0, 3, 7, 10, 1, 6, 109, 101, 109, 111, 114, 121, 2, 0])

test('caps a defined memory and the result still compiles', async () => {
  assert.equal(definedMemory(unbounded), { minPages: 3, maxPages: undefined })
  const capped = capMemory(unbounded, 200)
  assert.equal(definedMemory(capped), { minPages: 3, maxPages: 200 })
  const m = await WA.compile(capped)
  const inst = await WA.instantiate(m)
  const mem = inst.exports.memory as Mem
  assert.is(mem.grow(197), 3)
  assert.throws(() => mem.grow(1))
})

test('keeps a lower maximum and leaves a module without memory unchanged', () => {
  const once = capMemory(unbounded, 10)
  assert.equal(definedMemory(capMemory(once, 100)), { minPages: 3, maxPages: 10 })
  assert.is(capMemory(importing, 10), importing)
  const sq = definedMemory(square)
  assert.ok(sq !== undefined)
  assert.equal(definedMemory(capMemory(square, 64))?.maxPages, 64)
})

test('reads imported memory limits', () => {
  assert.equal(importedMemory(importing), { module: 'env', field: 'memory', minPages: 2, maxPages: 100 })
  assert.is(importedMemory(unbounded), undefined)
})

test('rejects malformed modules and a start size above the cap', () => {
  assert.throws(() => capMemory(new Uint8Array([1, 2, 3]), 10), (e: Error) => e instanceof WasmFormatError && /magic/.test(e.message))
  assert.throws(() => capMemory(unbounded.subarray(0, 11), 10), (e: Error) => e instanceof WasmFormatError)
  assert.throws(() => capMemory(unbounded, 2), /needs 192 KiB of memory to start, above the cap of 128 KiB/)
})

test.run()
