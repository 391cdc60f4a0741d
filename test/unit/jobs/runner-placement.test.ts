// The runner's lease rounds against scripted providers (FakeProvider over a LocalTransport, with
// a test transport around it): the placement race of test/integration/jobs-busy.test.ts (a provider that
// missed the first round was never asked again while the job's only lease was busy), and a
// provider that wins placement and then refuses its lease as BUSY (the job used to wait for it
// up to task.waitS and fail).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobRunner, type JobTransport, type TransportOffer } from '../../../src/jobs/index.js'
import { DbcError } from '../../../src/errors.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { compute, key, manifest, providers, transport } from '../../integration/jobs-helpers.js'

const owner = key(1)

/** A JobTransport around the LocalTransport whose offers and leases a test scripts. */
class ScriptedTransport implements JobTransport {
  rounds = 0
  constructor (private readonly inner: JobTransport, private readonly script: {
    /** Providers that do not answer round n (1-based). */
    silent?: (round: number) => ReadonlySet<string>
    /** Throws instead of opening a lease with this provider. */
    refuseLease?: (provider: string) => Error | undefined
    onLease?: (provider: string) => void
  }) {}

  async requestOffers (req: dbc.task.v1.ILeaseRequest, opts: Parameters<JobTransport['requestOffers']>[1]): Promise<TransportOffer[]> {
    const n = ++this.rounds
    const silent = this.script.silent?.(n) ?? new Set()
    return (await this.inner.requestOffers(req, opts)).filter(o => !silent.has(o.view.provider))
  }

  async openLease (provider: string, lease: dbc.task.v1.ILease, opts: { signal?: AbortSignal }): Promise<void> {
    const refused = this.script.refuseLease?.(provider)
    if (refused !== undefined) throw refused
    await this.inner.openLease(provider, lease, opts)
    this.script.onLease?.(provider)
  }

  runTask: JobTransport['runTask'] = async (p, t, o) => await this.inner.runTask(p, t, o)
  closeLease: JobTransport['closeLease'] = (p, id) => { this.inner.closeLease?.(p, id) }
  onHeartbeat: JobTransport['onHeartbeat'] = l => this.inner.onHeartbeat(l)
}

test('two one-slot providers, one silent in the first round: each runs one of the two tiles', async () => {
  // provider 0's tile does not end before provider 1 holds a lease (or 20 s pass: then the old
  // behaviour shows, provider 0 running both tiles one after the other)
  let leased1!: () => void
  const p1Leased = new Promise<void>(resolve => { leased1 = resolve })
  const gate = Promise.race([p1Leased, new Promise<void>(resolve => setTimeout(resolve, 20_000).unref())])
  const ps = providers(2, i => ({ slots: 1, compute: i === 0 ? async (input: Uint8Array) => { await gate; return compute(input) } : compute }))
  const inner = transport(ps, owner)
  const tr = new ScriptedTransport(inner, {
    silent: n => new Set(n === 1 ? [ps[1].id] : []),
    onLease: p => { if (p === ps[1].id) leased1() }
  })
  const r = new JobRunner({ jobId: 'c1'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 1 } }, verification: { mode: 'off' } }), holder: owner, transport: tr, code: new Uint8Array([1]), stragglerFactor: 0 })
  const s = await r.run()
  inner.close()
  assert.is(s.status, 'finished')
  assert.is(s.done, 2)
  assert.equal(ps.map(p => p.tasksRun), [1, 1], 'one tile on each provider')
  assert.is(s.providersUsed, 2)
  assert.ok(tr.rounds >= 2, `asked for offers ${tr.rounds} times`)
})

test('a provider that wins placement and refuses its lease BUSY: its tasks go to the other offer at once', async () => {
  // provider 0 is far cheaper (placement puts every task there) but busy when leased
  const ps = providers(2, i => ({ slots: 4, priceCpuHour: i === 0 ? 0.001 : 2 }))
  const inner = transport(ps, owner)
  let refused = 0
  const tr = new ScriptedTransport(inner, {
    refuseLease: p => p === ps[0].id ? (refused++, new DbcError('BUSY', `provider ${p} did not accept the lease (BUSY: all slots for this shape are busy; ask again later)`)) : undefined
  })
  // waitMs 60 s: before the fix the job waited for the cheap provider that long, then failed every task
  const r = new JobRunner({ jobId: 'c2'.repeat(32), manifest: manifest({ inputs: { range: { from: 0, to: 7 } }, verification: { mode: 'off' } }), holder: owner, transport: tr, code: new Uint8Array([1]), waitMs: 60_000, stragglerFactor: 0 })
  const s = await r.run()
  inner.close()
  assert.is(s.status, 'finished', JSON.stringify(s.failures))
  assert.is(s.done, 8)
  assert.equal(ps.map(p => p.tasksRun), [0, 8])
  assert.ok(refused >= 1)
  assert.ok((s.refusals?.BUSY ?? 0) >= 1, JSON.stringify(s.refusals))
})

test.run()
