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
  // the default checks: a checked task bills both agreeing copies, an unchecked one its only copy
  assert.ok(s.checkedTasks >= 80 && s.checkedTasks < 1000, `${s.checkedTasks} tasks spot-checked`)
  assert.is(s.billedCopies, 1000 + s.checkedTasks)
  assert.equal(s.caughtProviders, [])
  assert.ok(ps.filter(p => p.tasksRun > 0).length >= 6, 'work is spread')
})

test('30% of providers killed mid-job: the job completes and every result is correct', async () => {
  const ps = providers(10, () => ({ delayMs: 1 }))
  const tr = transport(ps)
  const killed = ps.slice(0, 3).map(p => p.id)
  let accepted = 0
  const r = new JobRunner({
    jobId: 'bb'.repeat(32), manifest: manifest({}), holder: owner, transport: tr, code: new Uint8Array([1]), leaseTimeoutMs: 500,
    onEvent: e => { if (e.type === 'accepted' && ++accepted === 300) for (const id of killed) tr.kill(id) }
  })
  const s = await r.run()
  tr.close()
  assert.is(s.status, 'finished')
  assert.is(s.done, 1000)
  for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
  // Copies stuck on the killed providers were re-run (lease lost) or raced (speculation).
  assert.ok(s.retries + s.speculative > 0, `re-run: ${s.retries} retries, ${s.speculative} speculative`)
  assert.is(s.billedCopies, 1000 + s.checkedTasks, 'one billed copy per task, two for a spot-checked one')
})

test('killed providers without speculation: their leases are lost and their copies re-run', async () => {
  const ps = providers(10, () => ({ delayMs: 1 }))
  const tr = transport(ps)
  let accepted = 0
  const r = new JobRunner({
    jobId: 'b1'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 499 } } }), holder: owner, transport: tr, code: new Uint8Array([1]), leaseTimeoutMs: 300, stragglerFactor: 0,
    onEvent: e => { if (e.type === 'accepted' && ++accepted === 100) for (const p of ps.slice(0, 3)) tr.kill(p.id) }
  })
  const s = await r.run()
  tr.close()
  assert.is(s.done, 500)
  assert.is(s.leasesLost, 3)
  assert.ok(s.retries > 0)
  assert.is(s.billedCopies, 500 + s.checkedTasks, 'one billed copy per task, two for a spot-checked one')
  for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
})

test('20% of providers lie; redundancy 3 / quorum 2: no wrong result is accepted, liars are never billed', async () => {
  const ps = providers(10, i => ({ liar: i < 2 }))
  const tr = transport(ps)
  const liars = new Set(ps.slice(0, 2).map(p => p.id))
  const billed: string[] = []
  const r = new JobRunner({
    jobId: 'cc'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 299 } }, verification: { redundancy: 3, quorum: 2 } }), holder: owner, transport: tr, code: new Uint8Array([1]),
    onEvent: e => { if (e.type === 'copy-settled' && e.billed) billed.push(e.provider) }
  })
  const s = await r.run()
  tr.close()
  assert.is(s.status, 'finished')
  assert.is(s.done, 300)
  for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
  assert.ok(s.wrongCopies > 0, 'lies were seen')
  assert.ok(billed.every(p => !liars.has(p)), 'no liar billed')
})

test('explain says where a task ran and why', async () => {
  const ps = providers(3)
  const tr = transport(ps)
  const r = new JobRunner({ jobId: 'dd'.repeat(32), manifest: manifest({ inputs: { list: ['a', 'b', 'c'] } }), holder: owner, transport: tr, code: new Uint8Array([1]) })
  await r.run()
  tr.close()
  const e = r.explain(1)
  assert.is(e.status, 'done')
  assert.ok(e.placement?.placed)
  assert.match(e.placement?.why ?? '', /lowest cost/)
  assert.is(e.copies[0].outcome, 'agreed')
  assert.is(dec.decode(r.results()[1].output), expected('b'))
})

test('over budget: tasks are not run and explain says why', async () => {
  const ps = providers(2, () => ({ priceCpuHour: 100 }))
  const tr = transport(ps)
  const r = new JobRunner({ jobId: 'ee'.repeat(32), manifest: manifest({ inputs: { list: [1, 2] }, budget: { maxPricePerHour: 1 } }), holder: owner, transport: tr, code: new Uint8Array([1]) })
  const s = await r.run()
  tr.close()
  assert.is(s.status, 'failed')
  assert.is(s.failed, 2)
  assert.match(s.failures[0].reason, /maxPricePerHour/)
  assert.is(ps[0].tasksRun + ps[1].tasksRun, 0)
})

test('the job deadline stops unfinished tasks', async () => {
  const ps = providers(2, () => ({ delayMs: 50 }))
  const tr = transport(ps)
  const t0 = Date.now()
  const r = new JobRunner({ jobId: 'ef'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 199 } }, deadline: 0.3 }), holder: owner, transport: tr, code: new Uint8Array([1]) })
  const s = await r.run()
  tr.close()
  assert.is(s.status, 'failed')
  assert.ok(s.done > 0 && s.done < 200, `done ${s.done}`)
  assert.is(s.done + s.failed, 200)
  // tasks placement predicts cannot finish in time fail at once (each copy costs its provider
  // COPY_OVERHEAD_MS); the placed ones still running when the deadline passes are stopped by it
  const reasons = s.failures.map(f => f.reason)
  assert.ok(reasons.every(r => /the job deadline passed|no offer can finish it before the deadline/.test(r)), reasons.join('; '))
  assert.ok(reasons.some(r => /the job deadline passed/.test(r)), `no placed task was stopped by the deadline: ${reasons.slice(0, 3).join('; ')}`)
  assert.ok(Date.now() - t0 < 1000)
})

test('no candidates / all refused: the job fails and says why', async () => {
  const empty = transport([])
  const a = await new JobRunner({ jobId: 'a1'.repeat(32), manifest: manifest({ inputs: { list: [1] } }), holder: owner, transport: empty, code: new Uint8Array([1]), giveUpAfterMs: 300 }).run()
  empty.close()
  assert.is(a.status, 'failed')
  assert.match(a.failures[0].reason, /no candidates/)
  const busy = transport(providers(2, () => ({ refuse: 'all slots busy' })))
  const b = await new JobRunner({ jobId: 'a2'.repeat(32), manifest: manifest({ inputs: { list: [1] } }), holder: owner, transport: busy, code: new Uint8Array([1]), giveUpAfterMs: 300 }).run()
  busy.close()
  assert.match(b.failures[0].reason, /refused/)
})

test('budget.total holds at run time: re-runs stop when it is spent', async () => {
  const ps = providers(2, () => ({ priceCpuHour: 3600, failEvery: 2, slots: 1, delayMs: 1 }))
  const tr = transport(ps)
  // One copy is predicted at 3600/h x 1 ms = 0.001 and bills at least that (>= 1 ms of CPU,
  // failed copies too, as real providers bill them): room for at most 12 copies.
  const r = new JobRunner({ jobId: 'b2'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 9 } }, budget: { total: 0.012 } }), holder: owner, transport: tr, code: new Uint8Array([1]), stragglerFactor: 0 })
  const s = await r.run()
  tr.close()
  assert.is(s.done + s.failed, 10)
  assert.ok(s.failed > 0)
  assert.ok(s.failures.some(f => /budget\.total/.test(f.reason)), JSON.stringify(s.failures))
  assert.ok(s.predictedSpent <= 0.012 + 0.002 + 1e-9, `spent ${s.predictedSpent}`)
  // billed: the budget plus the copies already out when it ran out (2 slots), each allowed 3x the
  // average copy's bill (a loaded machine makes the last copies bill more CPU than the first)
  assert.ok(s.meteredSpent <= 0.012 + 2 * (s.meteredSpent / Math.max(1, s.copies)) * 3, `billed ${s.meteredSpent} over ${s.copies} copies`)
})

test('budget.total holds on metered charges: providers billing far above the prediction stop the job early', async () => {
  // predicted 3600/h x 1 ms = 0.001 a copy; each provider takes ~5 ms and bills 10x its wall
  // time as CPU: ~0.05 a copy. Predicted prices alone would let all 20 tasks run (0.02).
  const ps = providers(2, () => ({ priceCpuHour: 3600, delayMs: 5, cpuMsFactor: 10, slots: 1 }))
  const tr = transport(ps)
  const r = new JobRunner({ jobId: 'b3'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 19 } }, budget: { total: 0.2 } }), holder: owner, transport: tr, code: new Uint8Array([1]), stragglerFactor: 0 })
  const s = await r.run()
  tr.close()
  assert.ok(s.failed > 0, `all ${s.done} tasks ran although they bill ${s.meteredSpent}`)
  assert.ok(s.failures.some(f => /budget\.total/.test(f.reason)), JSON.stringify(s.failures))
  assert.ok(s.meteredSpent > s.predictedSpent, `metered ${s.meteredSpent} vs predicted ${s.predictedSpent}`)
  // what was billed stays within the budget plus the copies already out when it ran out (2 slots)
  const perCopy = s.meteredSpent / Math.max(1, s.done)
  assert.ok(s.meteredSpent <= 0.2 + 2 * perCopy * 1.5, `billed ${s.meteredSpent} for ${s.done} tasks`)
})

test.run()
