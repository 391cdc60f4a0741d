import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { ModuleCache, sha256Hex } from '../../../src/compute/executors/wasm-modules.js'

const mod = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../src/compute/modules/${name}.wasm`, import.meta.url)))

test('concurrent requests share one compilation; hits are counted', async () => {
  const c = new ModuleCache(4)
  const code = mod('square')
  const [a, b] = await Promise.all([c.get(code, undefined, 16), c.get(code, sha256Hex(code), 16)])
  assert.is(a, b)
  assert.is(c.misses, 1)
  assert.is(c.hits, 1)
  assert.is(a.mode, 'abi')
  assert.ok(a.functions.has('sumSquares'))
  // a different memory cap is a different compiled module
  const capped = await c.get(code, undefined, 32)
  assert.is.not(capped, a)
  assert.is(c.misses, 2)
  assert.is((await c.get(mod('wasi-upper'), undefined, 16)).mode, 'wasi')
})

test('least recently used modules are evicted; bad modules are never cached', async () => {
  const c = new ModuleCache(2)
  const sq = mod('square'); const lp = mod('loop'); const mb = mod('membomb')
  await c.get(sq, undefined, 16)
  await c.get(lp, undefined, 16)
  await c.get(sq, undefined, 16) // square is now the most recent
  await c.get(mb, undefined, 16) // evicts loop
  assert.is(c.size, 2)
  await c.get(new Uint8Array(0), sha256Hex(sq), 16)
  try {
    await c.get(new Uint8Array(0), sha256Hex(lp), 16)
    assert.unreachable()
  } catch (err) {
    assert.match((err as Error).message, /not cached on this peer/)
  }
  await c.get(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 7]), undefined, 16).catch(() => {})
  assert.is(c.size, 2)
})

test('a code buffer is hashed once while its module is cached; a compile hashes it again (what runs matches the hash)', async () => {
  const c = new ModuleCache(1)
  const code = mod('square')
  const hash = sha256Hex(code)
  const first = await c.get(code, hash, 16)
  // changed in place after it was hashed: had it been hashed again, the declared hash would not match (BAD_MODULE)
  const was = code[code.length - 1]
  code[code.length - 1] = was ^ 0xff
  assert.is(await c.get(code, hash, 16), first, 'the module compiled from the bytes that had this hash')
  assert.is(c.hits, 1)
  // its module evicted: the next get must compile, so the buffer is hashed again and refused
  await c.get(mod('loop'), undefined, 16)
  try {
    await c.get(code, hash, 16)
    assert.unreachable()
  } catch (err) {
    assert.match((err as Error).message, /sha256 is .*not the declared/)
  }
  code[code.length - 1] = was
  assert.is.not(await c.get(code, hash, 16), first, 'compiled again from the same bytes')
})

test.run()
