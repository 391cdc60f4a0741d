// A redundancy-2 job over two providers, one of which stops mid-job (issue 15; what helper "user"
// saw with `kill -TERM`): the tasks that need a second, distinct provider wait for one (up to
// task.waitS) instead of failing; the provider comes back and is leased beside the other (before:
// the round placed only the offers it got, one provider for two copies, 'not-enough-providers',
// and the job failed 10 s later, its provider back and offering).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobRunner, LocalTransport, type FakeProvider } from '../../src/jobs/index.js'
import type { LocalProvider } from '../../src/core/scheduler/ports.js'
import { expected, key, manifest, providers, transport } from './jobs-helpers.js'

const owner = key(1)
const dec = new TextDecoder()

test('redundancy 2 over two providers, one stops and comes back 11 s later (past the 10 s give-up): the job waits, saying why, and finishes', async () => {
  const ps = providers(2, () => ({ delayMs: 1 }))
  const tr = transport(ps)
  let accepted = 0
  let back: NodeJS.Timeout | undefined
  let look: NodeJS.Timeout | undefined
  let seen: { waiting?: string, task?: string } = {}
  const r = new JobRunner({
    jobId: 'f1'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 599 } }, verification: { redundancy: 2 }, task: { timeoutMs: 5000, expectedMs: 1, waitS: 60 } }), holder: owner, transport: tr, code: new Uint8Array([1]), leaseTimeoutMs: 300,
    onEvent: e => {
      if (e.type === 'accepted' && ++accepted === 50) {
        tr.kill(ps[1].id)
        back = setTimeout(() => { tr.add(ps[1]) }, 11_000)
        look = setTimeout(() => { seen = { waiting: r.waiting(), task: r.explain(599).waiting } }, 8000)
      }
    }
  })
  const s = await r.run()
  clearTimeout(back); clearTimeout(look)
  tr.close()
  // while the provider was away, job status and explain said why the tasks waited (its lease was
  // lost: it is waited for; one that answers or is avoided leaves 'fewer distinct providers')
  assert.match(seen.waiting ?? '', /^waiting: (1 provider unreachable since its lease was lost|fewer distinct providers than verification\.redundancy copies)/)
  assert.is(seen.task, seen.waiting)
  assert.is(s.failed, 0, JSON.stringify(s))
  assert.is(s.done, 600)
  for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
})

/** A provider that, told to stop, answers its running copies PEER_STOPPED as a SIGTERM'd node does (src/compute/index.ts stop). */
function stoppable (p: FakeProvider): LocalProvider & { stopping: boolean } {
  const w = {
    id: p.id,
    stopping: false,
    offer: p.offer.bind(p),
    openLease: p.openLease.bind(p),
    closeLease: p.closeLease.bind(p),
    runTask: async (task: Parameters<LocalProvider['runTask']>[0], sender: Uint8Array) =>
      w.stopping ? { ok: false, error: 'PEER_STOPPED: the compute peer is stopping', code: 'PEER_STOPPED' } : await p.runTask(task, sender)
  }
  return w
}

test('a provider stopped with SIGTERM answers its copies PEER_STOPPED: lost, not failed; it is waited for, not avoided, and leased again when back', async () => {
  const ps = providers(2, () => ({ delayMs: 1 }))
  const b = stoppable(ps[1])
  const tr = new LocalTransport([ps[0], b], { sender: owner.peerId, heartbeatMs: 100 })
  let accepted = 0
  const timers: NodeJS.Timeout[] = []
  const r = new JobRunner({
    jobId: 'f2'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 599 } }, verification: { redundancy: 2 }, task: { timeoutMs: 5000, expectedMs: 1, waitS: 30 } }), holder: owner, transport: tr, code: new Uint8Array([1]), leaseTimeoutMs: 300,
    onEvent: e => {
      if (e.type === 'accepted' && ++accepted === 50) {
        b.stopping = true
        timers.push(setTimeout(() => { tr.kill(b.id) }, 200))
        timers.push(setTimeout(() => { b.stopping = false; tr.add(b) }, 11_000))
      }
    }
  })
  const s = await r.run()
  for (const t of timers) clearTimeout(t)
  tr.close()
  assert.is(s.failed, 0, JSON.stringify(s).slice(0, 2000))
  assert.is(s.done, 600)
  assert.equal(s.caughtProviders, [])
  for (const x of r.results()) assert.is(dec.decode(x.output), expected(x.index), `task ${x.index}`)
})

test.run()
