// `dbc job explain J --task N`: a task the job never had is refused with its range (it used to be
// answered with a made-up "finished" task), while the job runs and after it ended.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobService } from '../../../src/jobs/service.js'
import { JobStore } from '../../../src/jobs/store.js'
import { openStore } from '../../../src/store/db.js'
import { DbcError } from '../../../src/errors.js'
import { key, manifest, providers, transport } from '../../integration/jobs-helpers.js'

function refused (f: () => unknown, range: RegExp): void {
  try { f(); assert.unreachable('answered') } catch (err) {
    assert.instance(err, DbcError)
    assert.is((err as DbcError).code, 'TASK_OUT_OF_RANGE')
    assert.match((err as Error).message, range)
  }
}

test('out-of-range task numbers are refused, naming the range; in-range ones are explained', async () => {
  const owner = key(1)
  const store = new JobStore(openStore(':memory:'))
  const tr = transport(providers(2, () => ({ delayMs: 1 })), owner)
  const svc = new JobService({ store, transport: tr, identity: owner })
  try {
    const { jobId, done } = await svc.submit(manifest({ inputs: { range: { from: 0, to: 9 } } }), { code: new Uint8Array([1]) })
    refused(() => svc.explain(jobId, 10), /has 10 tasks \(indices 0 to 9\): there is no task 10/) // live
    await done
    refused(() => svc.explain(jobId, 5000), /has 10 tasks \(indices 0 to 9\): there is no task 5000/) // finished
    refused(() => svc.explain(jobId, -1), /there is no task -1/)
    refused(() => svc.explain(jobId, 1.5), /there is no task 1\.5/)
    const e = svc.explain(jobId, 9)
    assert.is(e.task?.index, 9)
    assert.is(e.task?.status, 'done')
  } finally {
    tr.close()
    store.store.close()
  }
})

test.run()
