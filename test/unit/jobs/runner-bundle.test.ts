// The runner's leases with TaskBundles (src/jobs/runner-leases.ts): its lease requests ask for
// bundles (LeaseRequest.bundles); a tiny task's lease on a provider
// whose signed offer says bundle_max is opened for bundles and its copies may share a frame; an
// older provider's offer (no bundle_max), or a task predicted long, gets none. The in-process
// transport records what the runner asked of it (it runs every copy alone).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobRunner, type JobTransport, type TransportOffer } from '../../../src/jobs/index.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { key, manifest, providers, transport } from '../../integration/jobs-helpers.js'

const owner = key(1)

/** A JobTransport around the LocalTransport that records the bundle each lease and copy was given. */
class Recording implements JobTransport {
  readonly leaseBundles = new Map<string, number | undefined>()
  readonly copyBundles: Array<number | undefined> = []
  readonly asked: Array<boolean | null | undefined> = []
  constructor (private readonly inner: JobTransport) {}
  async requestOffers (req: dbc.task.v1.ILeaseRequest, opts: Parameters<JobTransport['requestOffers']>[1]): Promise<TransportOffer[]> { this.asked.push(req.bundles); return await this.inner.requestOffers(req, opts) }
  async openLease (provider: string, lease: dbc.task.v1.ILease, opts: Parameters<JobTransport['openLease']>[2]): Promise<void> {
    this.leaseBundles.set(provider, opts.bundle)
    await this.inner.openLease(provider, lease, opts)
  }

  runTask: JobTransport['runTask'] = async (p, t, o) => { this.copyBundles.push(o.bundle); return await this.inner.runTask(p, t, o) }
  closeLease: JobTransport['closeLease'] = (p, id) => { this.inner.closeLease?.(p, id) }
  onHeartbeat: JobTransport['onHeartbeat'] = l => this.inner.onHeartbeat(l)
}

async function run (bundleMax: number | undefined, expectedMs: number): Promise<Recording> {
  const ps = providers(2, () => ({ slots: 2, ...(bundleMax !== undefined ? { bundleMax } : {}) }))
  const inner = transport(ps, owner)
  const tr = new Recording(inner)
  const r = new JobRunner({ jobId: `b${bundleMax ?? 0}${expectedMs}`.padEnd(64, '0'), manifest: manifest({ inputs: { range: { from: 0, to: 99 } }, verification: { mode: 'off' }, task: { timeoutMs: 60_000, expectedMs } }), holder: owner, transport: tr, code: new Uint8Array([1]), stragglerFactor: 0 })
  const s = await r.run()
  inner.close()
  assert.is(s.status, 'finished')
  assert.is(s.done, 100)
  return tr
}

test('tiny tasks on providers that offer bundles: leases opened for bundles, copies may share a frame', async () => {
  const tr = await run(8, 1)
  assert.ok(tr.asked.length > 0 && tr.asked.every(b => b === true), 'its lease requests ask for bundles (LeaseRequest.bundles: an older submitter does not, and gets offers without bundle_max)')
  assert.equal([...tr.leaseBundles.values()], [8, 8])
  assert.ok(tr.copyBundles.some(b => b === 8), 'copies went with their lease\'s bundle')
})

test('an older provider\'s offer (no bundle_max): no bundles', async () => {
  const tr = await run(undefined, 1)
  assert.equal([...tr.leaseBundles.values()], [undefined, undefined])
  assert.ok(tr.copyBundles.every(b => b === undefined))
})

test('tasks predicted long (past the read-ahead bound): no bundles, whatever the offer says', async () => {
  const tr = await run(8, 2000)
  assert.ok(tr.leaseBundles.size > 0)
  assert.ok([...tr.leaseBundles.values()].every(b => b === undefined))
  assert.ok(tr.copyBundles.every(b => b === undefined))
})

test.run()
