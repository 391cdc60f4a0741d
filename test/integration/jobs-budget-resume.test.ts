// A job resumed after its submitter stopped keeps what it billed before against budget.total.
// Found on a new user's walk (session 14): after a kill -9 and a restart, the budget ledger started
// from 0, so the resumed job could spend its budget again (~17 tasks ran past it unpaid). In-process
// providers; the stop is modelled as in test/long/jobs-scale (cancel, then marked running again).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../src/store/db.js'
import { JobService, JobStore } from '../../src/jobs/index.js'
import { key, manifest, providers, transport } from './jobs-helpers.js'

const owner = key(1)

test('a resumed job stops at budget.total counting what it billed before the restart', async () => {
  const store = new JobStore(openStore(':memory:'))
  // each copy is predicted at 36/h x 1 s = 0.01 (placement fits all 60 in the budget; 1 s: no copies
  // sent ahead of a slot) and bills 5 s of CPU, 0.05: a budget of 2 is 40 copies, spent at run time
  const tr = transport(providers(2, () => ({ priceCpuHour: 36, slots: 1, delayMs: 10, cpuMs: 5000 })), owner)
  try {
    const m = manifest({ inputs: { range: { from: 0, to: 59 } }, task: { timeoutMs: 5000, expectedMs: 1000 }, budget: { total: 2 }, verification: { mode: 'off' } })
    const svc1 = new JobService({ store, transport: tr, identity: owner })
    const ac = new AbortController()
    const { jobId, done } = await svc1.submit(m, { code: new Uint8Array([1]), signal: ac.signal, onProgress: p => { if (p.done >= 10) ac.abort() } })
    const first = await done
    assert.is(first.status, 'cancelled', JSON.stringify(first.failures.slice(0, 3)))
    const before = first.meteredSpent
    assert.ok(before >= 0.45 && before <= 1.9, `billed ${before} before the stop`)
    store.setJobStatus(jobId, 'running', Date.now())
    const svc2 = new JobService({ store, transport: tr, identity: owner })
    const [resumed] = await svc2.resumeAll()
    const s = await resumed.done
    assert.ok(s.failures.some(f => /budget\.total/.test(f.reason)), 'the resumed job stops on its budget')
    // what was billed in all: the budget plus at most the copies out when it ran out (2 slots) and one sent as it did
    // (the resumed run's metered total counts what was billed before it: without that, before + ~2 in all)
    assert.ok(s.meteredSpent >= before && s.meteredSpent <= 2 + 3 * 0.05 + 1e-9, `billed ${before} before the restart, ${s.meteredSpent} in all after it (budget 2, 0.05 a copy)`)
    assert.ok(store.accounting(jobId).billed <= 43, `${store.accounting(jobId).billed} copies billed`)
  } finally { tr.close(); store.store.close() }
})

test.run()
