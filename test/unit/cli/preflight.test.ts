// `dbc job submit` checks what a manifest names before anything ships (src/jobs/preflight.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { preflightJob, assertPreflight } from '../../../src/jobs/preflight.js'
import { parseManifestText } from '../../../src/jobs/manifest-file.js'
import { ManifestError } from '../../../src/errors.js'
import { defaultLoadCode } from '../../../src/jobs/service.js'

const modules = fileURLToPath(new URL('../../../src/compute/modules/', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'dbc-preflight-'))
copyFileSync(join(modules, 'square.wasm'), join(dir, 'square.wasm'))
copyFileSync(join(modules, 'wasi-upper.wasm'), join(dir, 'upper.wasm'))
writeFileSync(join(dir, 'notes.txt'), 'this is text, not a module\n')
writeFileSync(join(dir, 'a.bin'), 'abc')
writeFileSync(join(dir, 'empty.bin'), '')
mkdirSync(join(dir, 'folder'))

const m = (yaml: string): ReturnType<typeof parseManifestText> => parseManifestText(yaml, 'job.yaml')

test('a good wasm job passes and hands back the module', async () => {
  const r = await preflightJob(m('executor: wasm\ncode: { wasm: square.wasm }\nentry: run\ninputs: { list: [1, 2] }\n'), dir)
  assert.equal(r.issues, [])
  assert.ok(r.code !== undefined && r.code.length > 100)
})

test('a missing wasm file names the field and the path, with no raw ENOENT', async () => {
  const r = await preflightJob(m('executor: wasm\ncode: { wasm: gone.wasm }\nentry: run\ninputs: { list: [1] }\n'), dir)
  assert.is(r.issues.length, 1)
  assert.is(r.issues[0].field, 'code.wasm')
  assert.is(r.issues[0].code, 'FILE_MISSING')
  assert.match(r.issues[0].message, /^code\.wasm \(gone\.wasm\): no such file .*gone\.wasm$/)
  assert.not.match(r.issues[0].message, /ENOENT/)
})

test('a text file is refused as a module before it ships', async () => {
  const r = await preflightJob(m('executor: wasm\ncode: { wasm: notes.txt }\nentry: run\ninputs: { list: [1] }\n'), dir)
  assert.is(r.issues.length, 1)
  assert.is(r.issues[0].code, 'BAD_MODULE')
  assert.match(r.issues[0].message, /code\.wasm \(notes\.txt\)/)
})

test('a manifest without entry: the default "main" is not exported, and the exports are listed', async () => {
  const r = await preflightJob(m('executor: wasm\ncode: { wasm: square.wasm }\ninputs: { list: [1] }\n'), dir)
  assert.is(r.issues.length, 1)
  assert.is(r.issues[0].field, 'entry')
  assert.is(r.issues[0].code, 'NO_ENTRY')
  assert.match(r.issues[0].message, /entry "main" \(the default when the manifest names none\)/)
  assert.match(r.issues[0].message, /it exports: .*run/)
})

test('a WASI program must be started at _start, as providers do', async () => {
  const bad = await preflightJob(m('executor: wasm\ncode: { wasm: upper.wasm }\ninputs: { list: [1] }\n'), dir)
  assert.is(bad.issues[0]?.code, 'NO_ENTRY')
  assert.match(bad.issues[0].message, /WASI program.*"_start"/)
  const good = await preflightJob(m('executor: wasm\ncode: { wasm: upper.wasm }\nentry: _start\ninputs: { list: [1] }\n'), dir)
  assert.equal(good.issues, [])
})

test('input files: each missing one is named by its index; a folder or an empty file is refused', async () => {
  const r = await preflightJob(m('executor: wasm\ncode: { wasm: square.wasm }\nentry: run\ninputs: { files: { paths: [a.bin, nope.bin, folder] } }\n'), dir)
  assert.equal(r.issues.map(i => i.field), ['inputs.files.paths[1]', 'inputs.files.paths[2]'])
  assert.equal(r.issues.map(i => i.code), ['FILE_MISSING', 'NOT_A_FILE'])
  const e = await preflightJob(m('executor: wasm\ncode: { wasm: square.wasm }\nentry: run\ninputs: { files: { path: empty.bin, partitions: 4 } }\n'), dir)
  assert.equal(e.issues.map(i => i.field), ['inputs.files.path'])
})

test('assertPreflight lists every problem at once in one ManifestError', async () => {
  try {
    await assertPreflight(m('executor: wasm\ncode: { wasm: gone.wasm }\nentry: run\ninputs: { files: { paths: [nope.bin] } }\n'), dir, 'job.yaml')
    assert.unreachable()
  } catch (err) {
    assert.instance(err, ManifestError)
    assert.is((err as ManifestError).code, 'MANIFEST_FILE_MISSING')
    assert.match((err as Error).message, /^job\.yaml can not be submitted:\n {2}code\.wasm \(gone\.wasm\).*\n {2}inputs\.files\.paths\[0\] \(nope\.bin\)/)
    assert.match((err as ManifestError).hint ?? '', /relative to its folder/)
  }
})

test('process and container jobs name nothing local to check', async () => {
  const r = await preflightJob(m('executor: process\ncode: { command: [python3, t.py] }\ninputs: { list: [a] }\n'), dir)
  assert.equal(r.issues, [])
})

test('the daemon, given a manifest through the API, names the field of a missing module too', async () => {
  try {
    await defaultLoadCode(m('executor: wasm\ncode: { wasm: gone.wasm }\nentry: run\ninputs: { list: [1] }\n'), dir)
    assert.unreachable()
  } catch (err) {
    assert.instance(err, ManifestError)
    assert.match((err as Error).message, /^code\.wasm \(gone\.wasm\): no such file /)
    assert.not.match((err as Error).message, /ENOENT/)
  }
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })
test.run()
