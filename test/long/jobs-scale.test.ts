// Long variants of the job tests: provider processes with real kill -9, liars over
// processes, and a 10,000-task job with a submitter restart in the middle.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { openStore } from '../../src/store/db.js'
import { JobRunner, JobService, JobStore, ProcessTransport, type ProviderProcessSpec } from '../../src/jobs/index.js'
import { toHex } from '../../src/core/identity/index.js'
import { key, manifest } from '../integration/jobs-helpers.js'

const owner = key(1)
const dec = new TextDecoder()
const expected = (i: number): string => createHash('sha256').update(JSON.stringify(i)).digest('hex')
const fakes = (n: number, f: (i: number) => Partial<ProviderProcessSpec> = () => ({})): ProviderProcessSpec[] =>
  Array.from({ length: n }, (_, i) => ({ kind: 'fake', secretKey: toHex(key(200 + i).secretKey), slots: 4, heartbeatMs: 100, ...f(i) }))

test('5,000 tasks over 10 provider processes, 2 of them liars, redundancy 3 / quorum 2, kill -9 of 3 honest ones', async () => {
  const tr = await ProcessTransport.start(fakes(10, i => ({ liar: i < 2, delayMs: 1 })), { sender: owner.peerId })
  try {
    const ids = tr.ids()
    const liars = new Set(ids.slice(0, 2))
    let accepted = 0
    const billed: string[] = []
    const r = new JobRunner({
      jobId: '5a'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 4999 } }, verification: { redundancy: 3, quorum: 2 } }), holder: owner, transport: tr, code: new Uint8Array([1]), leaseTimeoutMs: 500,
      onEvent: e => {
        if (e.type === 'accepted' && ++accepted === 1500) for (const v of ids.slice(2, 5)) tr.kill(v)
        if (e.type === 'copy-settled' && e.billed) billed.push(e.provider)
      }
    })
    const s = await r.run()
    assert.is(s.done, 5000)
    for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
    assert.ok(billed.every(p => !liars.has(p)))
  } finally { tr.stop() }
})

test('10,000 tasks: the submitter stops mid-job and a new one resumes from the store', async () => {
  const store = new JobStore(openStore(':memory:'))
  const tr = await ProcessTransport.start(fakes(8), { sender: owner.peerId })
  try {
    const svc1 = new JobService({ store, transport: tr, identity: owner })
    const ac = new AbortController()
    let seen = 0
    // verification off: with the default spot checks a checking copy is billed too (every task billed once is the point here)
    const { jobId, done } = await svc1.submit(manifest({ inputs: { range: { from: 0, to: 9999 } }, verification: { mode: 'off' } }), { code: new Uint8Array([1]), signal: ac.signal, onProgress: p => { if ((seen = p.done) >= 4000) ac.abort() } })
    const first = await done
    assert.is(first.status, 'cancelled')
    assert.ok(seen >= 4000)
    // A cancelled job stays cancelled; mark it running again to model a crash, then resume.
    store.setJobStatus(jobId, 'running', Date.now())
    const svc2 = new JobService({ store, transport: tr, identity: owner })
    const [resumed] = await svc2.resumeAll()
    const s = await resumed.done
    assert.is(s.status, 'finished')
    const results = store.results(jobId)
    assert.is(results.length, 10_000)
    for (const x of results) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
    const acc = store.accounting(jobId)
    assert.is(acc.billed, 10_000)
    assert.is(acc.duplicates, 0)
  } finally { tr.stop(); store.store.close() }
})

test.run()
