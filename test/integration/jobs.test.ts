import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobRunner } from '../../src/jobs/index.js'
import { compute, expected, key, manifest, providers, transport } from './jobs-helpers.js'

const owner = key(1)
const dec = new TextDecoder()

test('a 1,000-task job over 8 providers completes with every result correct', async () => {
  const ps = providers(8)
  const tr = transport(ps)
  const m = manifest({})
  const r = new JobRunner({ jobId: 'aa'.repeat(32), manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]) })
  const s = await r.run()
  tr.close()
  assert.is(s.status, 'finished')
  assert.is(s.done, 1000)
  const results = r.results()
  assert.is(results.length, 1000)
  for (const x of results) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
  assert.is(s.billedCopies, 1000)
  assert.ok(ps.filter(p => p.tasksRun > 0).length >= 6, 'work is spread')
})

test.run()
