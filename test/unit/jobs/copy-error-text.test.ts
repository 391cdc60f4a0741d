// A provider's error names the copy by its task id as hex (src/compute/index.ts prints the id's
// bytes, "JOB:INDEX:ATTEMPT", as 140+ hex digits): `dbc job explain`, `dbc job logs` and the
// dashboard showed `TASK_MEMORY_LIMIT: task 3137643032…3a303a31: the task hit its memory cap of
// 32 MiB` (the user walk of session 14). The runner now keeps `task 0 copy 1` in its place.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobRunner, type JobTransport } from '../../../src/jobs/index.js'
import { readableCopyError } from '../../../src/jobs/runner.js'
import { key, manifest, providers, transport } from '../../integration/jobs-helpers.js'

const hex = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? new Uint8Array()).toString('hex')

test('a copy that fails with its task id in the message: explain shows the task and copy, not the hex id', async () => {
  const owner = key(1)
  const ps = providers(2, () => ({ slots: 2 }))
  const inner = transport(ps, owner)
  const tr: JobTransport = {
    requestOffers: async (req, opts) => await inner.requestOffers(req, opts),
    openLease: async (p, lease) => { await inner.openLease(p, lease) },
    // what the provider's wasm executor answers for a module that outgrows its memory cap
    runTask: async (_p, t) => ({ taskId: t.taskId, jobId: t.jobId, attempt: t.attempt, ok: false, code: 'TASK_MEMORY_LIMIT', error: `TASK_MEMORY_LIMIT: task ${hex(t.taskId)}: the task hit its memory cap of 32 MiB (unreachable)` }),
    closeLease: (p, id) => { inner.closeLease?.(p, id) },
    onHeartbeat: l => inner.onHeartbeat(l)
  }
  const jobId = 'e1'.repeat(32)
  const r = new JobRunner({ jobId, manifest: manifest({ inputs: { list: [1] }, verification: { mode: 'off' }, task: { timeoutMs: 5000, expectedMs: 1, maxAttempts: 2 } }), holder: owner, transport: tr, code: new Uint8Array([1]), stragglerFactor: 0 })
  const s = await r.run()
  inner.close()
  assert.is(s.status, 'failed')
  const errors = r.explain(0).copies.map(c => c.error ?? '')
  assert.is(errors.length, 2)
  assert.is(errors[0], 'TASK_MEMORY_LIMIT: task 0 copy 1: the task hit its memory cap of 32 MiB (unreachable)')
  assert.is(errors[1], 'TASK_MEMORY_LIMIT: task 0 copy 2: the task hit its memory cap of 32 MiB (unreachable)')
  assert.ok(s.failures.every(f => !f.reason.includes(hex(new TextEncoder().encode(`${jobId}:0:2`)))), JSON.stringify(s.failures))
})

test('only the copy\'s own id is replaced; other text and a long message are kept, bounded', () => {
  const id = new TextEncoder().encode('ab:3:1')
  assert.is(readableCopyError(`X: task ${hex(id)} ran past its wall-time limit`, id, 3, 1), 'X: task 3 copy 1 ran past its wall-time limit')
  assert.is(readableCopyError('X: task 6162 is someone else', id, 3, 1), 'X: task 6162 is someone else')
  assert.is(readableCopyError('x'.repeat(100_000), id, 3, 1).length, 8192)
  assert.is(readableCopyError('plain', new Uint8Array(), 0, 1), 'plain')
})

test.run()
