// Results are checked by default (issue 13): a job with NO verification section, 10 providers
// of which 2 return wrong results. No wrong result may be accepted, both liars must be caught,
// and once caught a liar must get no more billed copies (what the payer signs vouchers for).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { toHex } from '../../src/core/identity/index.js'
import { ReputationBook, type JobEvent } from '../../src/core/scheduler/index.js'
import { FakeProvider, JobRunner, JobStore } from '../../src/jobs/index.js'
import { openStore } from '../../src/store/db.js'
import { expected, key, manifest, providers, transport } from '../integration/jobs-helpers.js'

const owner = key(1)
const dec = new TextDecoder()
const enc = new TextEncoder()
// A manifest with no verification section at all (what a user who never heard of it writes).
const noVerification = (tasks: number) => manifest({ inputs: { range: { from: 0, to: tasks - 1 } } })

/** Replays the events as the payer sees them: billed copies per provider, revocations, catches. */
function payerView (events: JobEvent[]): { billedAfterCaught: string[], netBilled: Map<string, string> } {
  const caught = new Set<string>()
  const billedAfterCaught: string[] = []
  const netBilled = new Map<string, string>() // copy -> provider
  for (const e of events) {
    if (e.type === 'provider-caught') caught.add(e.provider)
    if (e.type !== 'copy-settled') continue
    const k = `${e.index}:${e.attempt}`
    if (e.billed) { netBilled.set(k, e.provider); if (caught.has(e.provider)) billedAfterCaught.push(`${e.provider} ${k}`) }
    if (e.revoked === true) netBilled.delete(k)
  }
  return { billedAfterCaught, netBilled }
}

test('no verification section, 2 liars among 10 providers: no wrong result is accepted, both are caught', async () => {
  const ps = providers(10, i => ({ liar: i === 2 || i === 6 }))
  const liars = new Set([ps[2].id, ps[6].id])
  const tr = transport(ps, owner)
  const store = new JobStore(openStore(':memory:'))
  const events: JobEvent[] = []
  const jobId = '1a'.repeat(32)
  const r = new JobRunner({ jobId, manifest: noVerification(400), holder: owner, transport: tr, code: new Uint8Array([1]), store, onEvent: e => events.push(e) })
  const s = await r.run()
  tr.close()
  assert.is(s.status, 'finished')
  assert.is(s.done, 400)
  const results = r.results()
  assert.is(results.length, 400)
  for (const x of results) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}: a wrong result was accepted`)
  assert.equal([...s.caughtProviders].sort(), [...liars].sort(), 'both liars caught')
  assert.ok(ps[2].tasksRun > 0 && ps[6].tasksRun > 0, 'the liars did get work (they were not just avoided)')
  const pay = payerView(events)
  assert.equal(pay.billedAfterCaught, [], 'nothing billed to a liar after it was caught')
  for (const [k, p] of pay.netBilled) assert.not.ok(liars.has(p), `liar ${p} still billed for copy ${k}`)
  // the store agrees: no billed copy of a liar, every billed copy carries the accepted result
  for (const c of store.copies(jobId)) {
    if (!c.billed) continue
    assert.not.ok(liars.has(c.provider), `stored copy ${c.index}:${c.attempt} of a liar is billed`)
    assert.is(c.hash, results[c.index].hash)
  }
  console.log(`liars: ${s.copies} copies for 400 tasks (${(s.copies / 400).toFixed(2)} per task), ${s.checkedTasks} spot-checked, ${s.wrongCopies} wrong copies, caught ${s.caughtProviders.length}`)
  store.store.close()
})

test('colluding liars (the same wrong value), no one established yet: no wrong result survives, both are caught', async () => {
  const wrong = (input: Uint8Array): Uint8Array => enc.encode(`wrong ${toHex(input)}`)
  const ps = providers(10, i => i < 2 ? { compute: wrong } : {})
  const liars = new Set([ps[0].id, ps[1].id])
  const tr = transport(ps, owner)
  const events: JobEvent[] = []
  const r = new JobRunner({ jobId: '1b'.repeat(32), manifest: noVerification(300), holder: owner, transport: tr, code: new Uint8Array([1]), onEvent: e => events.push(e) })
  const s = await r.run()
  tr.close()
  assert.is(s.done, 300)
  for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}: a wrong result was accepted`)
  assert.equal([...s.caughtProviders].sort(), [...liars].sort())
  assert.equal(payerView(events).billedAfterCaught, [])
})

test('colluding newcomers among established providers: their checks go to the established ones', async () => {
  const rep = new ReputationBook()
  const honest = providers(8)
  const tr0 = transport(honest, owner)
  await new JobRunner({ jobId: '1c'.repeat(32), manifest: noVerification(300), holder: owner, transport: tr0, code: new Uint8Array([1]), reputation: rep }).run()
  tr0.close()
  // two newcomers that return the same wrong value
  const wrong = (input: Uint8Array): Uint8Array => enc.encode(`wrong ${toHex(input)}`)
  const colluders = [key(200), key(201)].map(k => new FakeProvider({ secretKey: k.secretKey, compute: wrong, slots: 4 }))
  const ps = [...honest, ...colluders]
  const tr = transport(ps, owner)
  const r = new JobRunner({ jobId: '1d'.repeat(32), manifest: noVerification(300), holder: owner, transport: tr, code: new Uint8Array([1]), reputation: rep })
  const s = await r.run()
  tr.close()
  assert.is(s.done, 300)
  for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
  assert.equal([...s.caughtProviders].sort(), colluders.map(c => c.id).sort())
  // the honest providers kept their record: most of their tasks ran once
  console.log(`colluders: ${s.copies} copies for 300 tasks`); assert.ok(s.copies < 300 * 1.6, `${s.copies} copies for 300 tasks`)
})

test.run()
