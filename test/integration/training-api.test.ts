// The daemon side of training (TrainingSubsystem) behind a stand-in control API: submit with
// automatic group selection (connected peers serving /dbc/allreduce, nearest first), stream the
// progress events, fetch the model and the per-round receipts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createHost, type Host } from '../../src/net/host.js'
import { TrainingService } from '../../src/training/service.js'
import { TrainingSubsystem } from '../../src/training/subsystem.js'
import { decodeModel } from '../../src/training/session.js'
import { createReceiptMeter } from '../../src/training/metering.js'
import type { DaemonContext } from '../../src/node/daemon.js'
import { openStore } from '../../src/store/db.js'

type Route = (req: any, send?: (e: unknown) => void) => unknown
const routes = new Map<string, Route>()
const fakeApi = {
  route: (m: string, p: string, h: Route) => { routes.set(`${m} ${p}`, h) },
  streamRoute: (m: string, p: string, h: Route) => { routes.set(`${m} ${p}`, h) }
}
const call = async (key: string, params: Record<string, string> = {}, body?: unknown): Promise<any> => await routes.get(key)!({ params, body, query: new URLSearchParams(), signal: new AbortController().signal })

let hosts: Host[] = []
const services: TrainingService[] = []
let subsystem: TrainingSubsystem | undefined

test.after(async () => {
  await subsystem?.stop()
  for (const s of services) await s.stop()
  for (const h of hosts) await h.stop()
})

test('submit picks the serving peers, streams round/loss/accuracy, and returns the model', async () => {
  const keys = await Promise.all([0, 1, 2].map(async () => await generateKeyPair('Ed25519')))
  hosts = await Promise.all(keys.map(async k => await createHost({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })))
  const [submitter, a, b] = hosts
  for (const [h, k] of [[a, keys[1]], [b, keys[2]]] as const) {
    const s = new TrainingService(h, { meter: createReceiptMeter({ secretKey: k.raw.subarray(0, 32), prices: { priceGpuHour: 1, priceCpuHour: 0.1 } }) })
    await s.start()
    services.push(s)
  }
  await submitter.dial(a.getMultiaddrs()[0])
  await submitter.dial(b.getMultiaddrs()[0])
  // identify tells the submitter which protocols the peers serve
  for (let i = 0; i < 50; i++) {
    const known = await Promise.all([a, b].map(async h => (await submitter.peerStore.get(h.peerId)).protocols.includes('/dbc/allreduce/1.0.0')))
    if (known.every(Boolean)) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  subsystem = new TrainingSubsystem()
  const ctx = { host: submitter, api: fakeApi, identity: { secretKey: keys[0].raw.subarray(0, 32) }, log: pino({ level: 'silent' }), store: openStore(':memory:') } as unknown as DaemonContext
  await subsystem.start(ctx)
  const spec = { groupSize: 2, rounds: 6, localSteps: 5, batchSize: 16, evalEvery: 3, dataset: { trainPerClass: 100, testPerClass: 50 } }
  const { jobId } = await call('POST /v1/training', {}, { spec })
  const events: any[] = []
  await routes.get('GET /v1/training/:id/events')!({ params: { id: jobId }, query: new URLSearchParams(), body: undefined, signal: new AbortController().signal }, (e) => { events.push(e) })
  const progress = events.filter(e => e.type === 'progress')
  assert.equal(progress.map(e => e.round), [0, 1, 2, 3, 4, 5])
  assert.ok(progress.every(e => e.members === 2 && Number.isFinite(e.loss)))
  assert.ok(progress[2].accuracy > 0.3 && progress[5].accuracy > progress[2].accuracy - 0.1)
  const end = events[events.length - 1]
  assert.is(end.type, 'end')
  assert.is(end.status, 'done')
  const results = await call('GET /v1/training/:id/results', { id: jobId })
  assert.is(results.receipts, 12)
  assert.equal(results.members.sort(), [a, b].map(h => h.peerId.toString()).sort())
  const model = decodeModel(Buffer.from(results.model, 'base64'))
  assert.is(model.params.length, 784 * 64 + 64 + 640 + 10)
  assert.is(model.spec.rounds, 6)
  // the ended job keeps neither its session (model and optimizer state, every round's receipts) nor
  // its model (read from the store when asked for), and its view still names each member's rank
  const kept = (subsystem as unknown as { jobs: Map<string, { session?: unknown, result?: { model?: unknown } }> }).jobs.get(jobId)!
  assert.is(kept.session, undefined)
  assert.is(kept.result?.model, undefined)
  const view = await call('GET /v1/training/:id', { id: jobId })
  assert.equal(Object.keys(view.ranks).sort(), [a, b].map(h => h.peerId.toString()).sort())
  assert.is(view.history.length, 6)
  try {
    await call('GET /v1/training/:id', { id: 'nope' })
    assert.unreachable()
  } catch (err) {
    assert.is((err as any).code, 'NOT_FOUND')
  }
})

test('a job every peer refuses fails with their reasons in GET /v1/training/:id', async () => {
  const [, a, b] = hosts
  // the providers declared no trainers: each refuses, naming what it offers
  const { jobId } = await call('POST /v1/training', {}, { spec: { model: { kind: 'external', trainer: 'torch-mnist' }, groupSize: 2, rounds: 1 }, peers: [a, b].map(h => h.peerId.toString()) })
  const events: any[] = []
  await routes.get('GET /v1/training/:id/events')!({ params: { id: jobId }, query: new URLSearchParams(), body: undefined, signal: new AbortController().signal }, (e) => { events.push(e) })
  const view = await call('GET /v1/training/:id', { id: jobId })
  assert.is(view.status, 'failed')
  assert.is(view.error.code, 'INVITES_REFUSED')
  assert.match(view.error.message, /^all invited peers refused: 12D3KooW\S+…: unknown trainer 'torch-mnist' \(this node offers: none\); 12D3KooW/)
  assert.equal(view.refusals.map((r: any) => r.peer).sort(), [a, b].map(h => h.peerId.toString()).sort())
  assert.ok(view.refusals.every((r: any) => r.reason === "unknown trainer 'torch-mnist' (this node offers: none)"))
  assert.is(events[events.length - 1].error.code, 'INVITES_REFUSED')
  // a spec that names a program never leaves the submitter
  try {
    await call('POST /v1/training', {}, { spec: { model: { kind: 'external', command: ['sh'] } }, peers: [a.peerId.toString()] })
    assert.unreachable()
  } catch (err) {
    assert.is((err as any).code, 'TRAINING_SPEC_NAMES_PROGRAM')
  }
})
test('a second built-in job on peers running this node\'s first is refused at once, naming it; the job keeps its name', async () => {
  const [, a, b] = hosts
  const spec = { groupSize: 2, rounds: 400, localSteps: 5, batchSize: 16, evalEvery: 0, dataset: { trainPerClass: 100, testPerClass: 50 } }
  const { jobId } = await call('POST /v1/training', {}, { spec, name: 'first\u001b[2J' })
  for (let i = 0; i < 200 && (await call('GET /v1/training/:id', { id: jobId })).round < 0; i++) await new Promise(resolve => setTimeout(resolve, 50))
  const view = await call('GET /v1/training/:id', { id: jobId })
  assert.is(view.status, 'running')
  assert.is(view.name, 'first[2J', 'printable')
  assert.is(view.groupSize, 2)
  // each member's data shard, for `dbc job explain` (helper user16 #8): ranks 0 and 1 of the two members
  assert.equal(Object.keys(view.ranks).sort(), [...view.members].sort())
  assert.equal(Object.values(view.ranks).sort(), [0, 1])
  // named peers: one of them runs `first` (before: the escrow locked, then both refused as busy)
  const refused = async (body: unknown): Promise<any> => await call('POST /v1/training', {}, body).then(() => assert.unreachable('accepted'), (err: any) => err)
  const named = await refused({ spec, peers: [a.peerId.toString()] })
  assert.is(named.code, 'PEERS_BUSY')
  assert.match(named.message, `run this node's training job ${jobId}`)
  assert.match(named.hint, `dbc job status ${jobId}`)
  // chosen for it: every serving peer runs it
  const auto = await refused({ spec })
  assert.is(auto.code, 'PEERS_BUSY')
  // another kind of trainer is not held to the built-in rule (it fails later, for its own reason)
  const other = await call('POST /v1/training', {}, { spec: { model: { kind: 'external', trainer: 'torch-mnist' }, groupSize: 2, rounds: 1 }, peers: [a, b].map(h => h.peerId.toString()) })
  assert.type(other.jobId, 'string')
})


test('dbc job cancel on a training job: its members stop, it ends cancelled, its peers take the next job', async () => {
  const [, a, b] = hosts
  const first = (await call('GET /v1/training')).jobs.find((j: any) => j.name === 'first[2J')
  assert.is(first?.status, 'running', 'the 400-round job of the test before still runs')
  assert.equal(services.map(s => s.workers.size), [1, 1], 'each member runs it')
  const view = await call('POST /v1/training/:id/cancel', { id: first.jobId })
  assert.is(view.status, 'cancelled')
  assert.is(view.error.code, 'CANCELLED')
  assert.ok(view.round < 399, `cancelled at round ${String(view.round)}`)
  // the event stream ends with it
  const events: any[] = []
  await routes.get('GET /v1/training/:id/events')!({ params: { id: first.jobId }, query: new URLSearchParams(), body: undefined, signal: new AbortController().signal }, (e) => { events.push(e) })
  assert.is(events[events.length - 1].type, 'end')
  assert.is(events[events.length - 1].status, 'cancelled')
  // the members were told to stop: their workers go
  for (let i = 0; i < 100 && services.some(s => s.workers.size > 0); i++) await new Promise(resolve => setTimeout(resolve, 50))
  assert.equal(services.map(s => s.workers.size), [0, 0])
  // no more rounds after the cancel
  const rounds = (await call('GET /v1/training/:id', { id: first.jobId })).history.length
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.is((await call('GET /v1/training/:id', { id: first.jobId })).history.length, rounds)
  // a job that is not running cannot be cancelled; an unknown one is not found
  const again = await call('POST /v1/training/:id/cancel', { id: first.jobId }).then(() => assert.unreachable('cancelled twice'), (err: any) => err)
  assert.is(again.code, 'NOT_RUNNING')
  const unknown = await call('POST /v1/training/:id/cancel', { id: 'nope' }).then(() => assert.unreachable('found'), (err: any) => err)
  assert.is(unknown.code, 'NOT_FOUND')
  // its peers are free: the next built-in job on them is accepted and runs
  const spec = { groupSize: 2, rounds: 400, localSteps: 5, batchSize: 16, evalEvery: 0, dataset: { trainPerClass: 100, testPerClass: 50 } }
  const { jobId } = await call('POST /v1/training', {}, { spec, peers: [a, b].map(h => h.peerId.toString()) })
  for (let i = 0; i < 200 && (await call('GET /v1/training/:id', { id: jobId })).round < 0; i++) await new Promise(resolve => setTimeout(resolve, 50))
  assert.is((await call('GET /v1/training/:id', { id: jobId })).status, 'running')
  assert.is((await call('POST /v1/training/:id/cancel', { id: jobId })).status, 'cancelled')
})

test.run()
