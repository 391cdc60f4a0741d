import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadManifestFile, parseManifestText, canonicalJson, checkJobCode, moduleRefusal } from '../../../src/jobs/manifest-file.js'
import { ManifestError } from '../../../src/errors.js'
import { JobService } from '../../../src/jobs/service.js'
import { JobStore } from '../../../src/jobs/store.js'
import { openStore } from '../../../src/store/db.js'
import { funcImport, table, withMemories } from '../compute/wasm-bytes.js'
import { key, providers, transport } from '../../integration/jobs-helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-manifest-'))
const square = new Uint8Array(readFileSync(new URL('../../../src/compute/modules/square.wasm', import.meta.url)))
writeFileSync(join(dir, 'tile.wasm'), withMemories(1, 1, 1))

test('reads YAML and JSON manifests', async () => {
  writeFileSync(join(dir, 'job.yaml'), 'executor: wasm\ncode: { wasm: tile.wasm }\nentry: render\ninputs:\n  range: { from: 0, to: 63 }\nverification: { redundancy: 3, quorum: 2 }\nbudget: { maxPricePerHour: 2, total: 10 }\nlocation: { lat: 35.6, lon: 139.7, maxDistanceKm: 2000 }\n')
  const y = await loadManifestFile(join(dir, 'job.yaml'))
  assert.is(y.manifest.entry, 'render')
  assert.is(y.manifest.verification.quorum, 2)
  assert.is(y.baseDir, dir)
  writeFileSync(join(dir, 'job.json'), JSON.stringify({ executor: 'process', code: { command: ['python3', 't.py'] }, inputs: { list: ['a', 'b'] } }))
  const j = await loadManifestFile(join(dir, 'job.json'))
  assert.equal(j.manifest.code.command, ['python3', 't.py'])
})

test('errors are ManifestErrors naming the field', async () => {
  try {
    parseManifestText('executor: wasm\ncode: { wasm: a.wasm }\ninputs: { range: { from: 3, to: 1 } }\nresources: { gpu: { count: 1, vram: 8 } }\n', 'job.yaml')
    assert.unreachable()
  } catch (e) {
    assert.instance(e, ManifestError)
    assert.match((e as Error).message, 'inputs.range.to: must be >= from')
    assert.match((e as Error).message, 'resources.gpu.vram: unknown field')
  }
  assert.throws(() => parseManifestText('{ "executor": ', 'job.json'), /not valid JSON/)
  try { await loadManifestFile(join(dir, 'missing.yaml')); assert.unreachable() } catch (e) { assert.match((e as Error).message, /ENOENT/) }
})

/** The ManifestError checkJobCode throws for `code` in a wasm manifest capped at `memoryMib`. */
function refusal (code: Uint8Array, memoryMib = 64): ManifestError {
  const m = parseManifestText(`executor: wasm\ncode: { wasm: job.wasm }\ninputs: { list: [a] }\nresources: { cores: 1, memoryMib: ${memoryMib} }\n`)
  try {
    checkJobCode(m, code)
  } catch (e) {
    assert.instance(e, ManifestError)
    return e as ManifestError
  }
  throw new Error('the module was accepted')
}

test('a module providers refuse at validation is refused at submission, naming code.wasm and why', () => {
  const multi = refusal(withMemories(4, 1, 1))
  assert.is(multi.code, 'MANIFEST_BAD_MODULE')
  assert.is(multi.message, 'code.wasm (job.wasm): providers refuse this module before it runs: the module declares too many memories (declared + imported): 4, above the limit of 1')
  assert.ok((multi.hint ?? '').includes('one memory'), multi.hint)
  assert.match(refusal(withMemories(1, 1, 1, { tables: [table(10_000_000, 10_000_000)] })).message, /^code\.wasm \(job\.wasm\): .*table 0 starts with too many elements: 10000000, above the limit of 100000/)
  assert.match(refusal(withMemories(1, 1, 1, { imports: [funcImport('env', 'system')] })).message, /^code\.wasm \(job\.wasm\): .*imports env\.system \(function\), which is outside the task ABI/)
  // a memory that starts above resources.memoryMib: refused at 1 MiB, accepted at 4 MiB
  assert.match(refusal(withMemories(1, 32, 32), 1).message, /memory 0 needs too much memory to start: 2 MiB, above the limit of the task's cap of 1 MiB/)
  assert.not.throws(() => { checkJobCode(parseManifestText('executor: wasm\ncode: { wasm: j.wasm }\ninputs: { list: [a] }\nresources: { cores: 1, memoryMib: 4 }\n'), withMemories(1, 32, 32)) })
})

test('a file that is not wasm, or does not compile, is refused; good modules and other executors pass', () => {
  const text = refusal(new TextEncoder().encode('#!/bin/sh\necho not a module\n'))
  assert.match(text.message, /^code\.wasm \(job\.wasm\): providers refuse this module before it runs: not a WebAssembly module \(bad magic bytes\)$/)
  assert.ok((text.hint ?? '').includes('build the module for wasm32'), text.hint)
  // sections that parse but a function body V8 refuses (i32.const becomes an unknown opcode)
  const broken = withMemories(1, 1, 1)
  const at = broken.findIndex((b, i) => b === 0x41 && broken[i + 1] === 16 && broken[i + 2] === 0x0b)
  broken[at] = 0xff
  assert.is(moduleRefusal(broken, 64), undefined, 'the pure validator does not read function bodies')
  assert.match(refusal(broken).message, /^code\.wasm \(job\.wasm\): not a valid WebAssembly module/)
  const m = parseManifestText('executor: wasm\ncode: { wasm: s.wasm }\ninputs: { list: [a] }\n')
  assert.not.throws(() => { checkJobCode(m, square) })
  assert.is(moduleRefusal(square, 256), undefined)
  assert.not.throws(() => { checkJobCode(parseManifestText('executor: process\ncode: { command: [echo, hi] }\ninputs: { list: [a] }\n'), new Uint8Array([1])) })
})

test('loadManifestFile checks the module it names, relative to the manifest', async () => {
  writeFileSync(join(dir, 'bomb.wasm'), withMemories(8, 16, 16))
  writeFileSync(join(dir, 'bomb.yaml'), 'executor: wasm\ncode: { wasm: bomb.wasm }\ninputs: { list: [a] }\n')
  try { await loadManifestFile(join(dir, 'bomb.yaml')); assert.unreachable() } catch (e) {
    assert.instance(e, ManifestError)
    assert.match((e as Error).message, /^code\.wasm \(bomb\.wasm\): .*too many memories .*: 8, above the limit of 1/)
  }
  assert.is((await loadManifestFile(join(dir, 'bomb.yaml'), { checkCode: false })).manifest.code.wasm, 'bomb.wasm')
  writeFileSync(join(dir, 'gone.yaml'), 'executor: wasm\ncode: { wasm: gone.wasm }\ninputs: { list: [a] }\n')
  try { await loadManifestFile(join(dir, 'gone.yaml')); assert.unreachable() } catch (e) {
    assert.is((e as ManifestError).code, 'MANIFEST_UNREADABLE')
    assert.match((e as Error).message, /^code\.wasm: can not read the module .*gone\.wasm: ENOENT/)
  }
})

test('the job service refuses a bad module from disk before storing the job', async () => {
  const owner = key(1)
  const store = new JobStore(openStore(':memory:'))
  const tr = transport(providers(1), owner)
  const svc = new JobService({ store, transport: tr, identity: owner })
  try {
    writeFileSync(join(dir, 'text.wasm'), 'hello, I am text')
    const m = parseManifestText('executor: wasm\ncode: { wasm: text.wasm }\ninputs: { list: [a] }\n')
    try { await svc.submit(m, { baseDir: dir }); assert.unreachable() } catch (e) {
      assert.is((e as ManifestError).code, 'MANIFEST_BAD_MODULE')
      assert.match((e as Error).message, /^code\.wasm \(text\.wasm\): .*not a WebAssembly module/)
    }
    assert.is(svc.list().length, 0, 'nothing was stored')
  } finally {
    tr.close()
    store.store.close()
  }
})

test('canonical JSON sorts keys', () => {
  assert.is(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}')
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })
test.run()
