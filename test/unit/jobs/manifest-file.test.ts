import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadManifestFile, parseManifestText, canonicalJson } from '../../../src/jobs/manifest-file.js'
import { ManifestError } from '../../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-manifest-'))

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

test('canonical JSON sorts keys', () => {
  assert.is(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}')
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })
test.run()
