// TaskBundles on a lease stream, provider side (src/net/task-lease-stream.ts): a bundle is ONE
// unit of the stream's pipeline bound, its tasks run one after another (through runTask when the
// provider has no runBundle), each answered by its own result, all written together with one
// receipt signature; a cancel stops one task; a bundle no honest holder sends ends the stream
// with a typed WireError (the caller charges it), a duplicate id gets its own answer.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { FramedStream } from '../../../src/net/framed.js'
import { CoalescingWriter } from '../../../src/net/lease-writer.js'
import { LEASE_STREAM_QUEUED, serveLeaseTasks } from '../../../src/net/task-lease-stream.js'
import { encodeFrame, FrameDecoder } from '../../../src/wire/frame.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt, signReceiptBatch, verifyReceipt } from '../../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, signBytes } from '../../../src/core/identity/index.js'
import { TASK_BUNDLE_MAX } from '../../../src/core/scheduler/ports.js'
import { createRng } from '../../../src/core/rng.js'
import { FakeStream, fakeConnection } from './fake-stream.js'

const TaskMessage = dbc.task.v1.TaskMessage
const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
const turns = async (n: number, done: () => boolean = () => false): Promise<void> => { for (let i = 0; i < n && !done(); i++) await turn() }
const leaseId = new Uint8Array([7, 7])
const secret = createRng(9).bytes(new Uint8Array(32))
const me = peerIdBytesFromEd25519Key(ed25519PublicKey(secret))

type Sent = dbc.task.v1.TaskResult & { receipt: dbc.receipt.v1.SignedReceipt }
/** Results per stream send. */
const sends = (s: FakeStream): Sent[][] => {
  const dec = new FrameDecoder({ maxFrameBytes: 1 << 20 })
  return s.sent.map(c => dec.push(c, 100).map(f => TaskMessage.decode(f as Uint8Array).result as Sent))
}
const task = (n: number, over: Partial<dbc.task.v1.ITask> = {}): dbc.task.v1.ITask => ({ leaseId, taskId: new Uint8Array([n]), executor: 'wasm', entry: 'run', codeHash: new Uint8Array([5]), batchReceipts: true, ...over })
const bundleFrame = (tasks: dbc.task.v1.ITask[]): Uint8Array => encodeFrame(TaskMessage.encode({ bundle: { tasks } }).finish())

/** A provider without runBundle whose tasks end when the test says (or at once); receipts as ComputePeer leaves them for a batch. */
function rig (auto = false): { provider: any, releases: Map<number, () => void>, ran: number[], running: { now: number, most: number }, signCalls: number[] } {
  const releases = new Map<number, () => void>()
  const ran: number[] = []
  const running = { now: 0, most: 0 }
  const signCalls: number[] = []
  const provider: any = {
    runTask: async (t: dbc.task.v1.ITask, _s: Uint8Array, opts: { unsignedReceipt?: boolean } = {}): Promise<dbc.task.v1.ITaskResult> => {
      const n = t.taskId?.[0] ?? 0
      ran.push(n)
      running.most = Math.max(running.most, ++running.now)
      try {
        if (!auto) await new Promise<void>(resolve => releases.set(n, resolve))
        else await turn()
      } finally { running.now-- }
      const r = buildReceipt({ jobId: new Uint8Array([1]), taskId: new Uint8Array([n]), provider: me, consumer: new Uint8Array([2]), usage: { wallMs: 1, cpuMs: 1, gpuSeconds: 0, bytesIn: 8, bytesOut: 8 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), pricingVersion: 1 })
      const receipt = opts.unsignedReceipt === true ? { receipt: dbc.receipt.v1.UsageReceipt.encode(r).finish(), signature: new Uint8Array(0) } : signReceipt(r, secret)
      return { taskId: t.taskId, ok: true, output: new Uint8Array([n]), receipt }
    },
    signReceipts: (rs: readonly Uint8Array[]) => { signCalls.push(rs.length); return signReceiptBatch(rs, m => signBytes(secret, m)) }
  }
  return { provider, releases, ran, running, signCalls }
}

function serve (provider: any, init: { slots?: number, bundleMax?: number } = {}): { s: FakeStream, served: Promise<void>, stop: () => Promise<void> } {
  const s = new FakeStream()
  const framed = new FramedStream(s as unknown as Stream, { maxFrameBytes: 1 << 20 })
  const writer = new CoalescingWriter(framed, { lingerMs: 60_000 })
  const served = serveLeaseTasks({ framed, writer, connection: fakeConnection('holder') as never, sender: new Uint8Array([1]), provider, leaseId, slots: init.slots ?? 4, ...('bundleMax' in init ? { bundleMax: init.bundleMax } : { bundleMax: TASK_BUNDLE_MAX }), charge: () => {}, writeTimeoutMs: 10_000 })
  served.catch(() => {})
  return { s, served, stop: async () => { s.end(); await served.catch(() => {}); await writer.close().catch(() => {}) } }
}

test('a bundle of 16: its tasks run one after another, each answered, all in one write under one receipt signature', async () => {
  const { provider, ran, running, signCalls } = rig(true)
  const { s, stop } = serve(provider)
  const ids = Array.from({ length: TASK_BUNDLE_MAX }, (_, i) => i + 1)
  s.deliver(bundleFrame(ids.map(n => task(n))))
  await turns(200, () => s.sent.length > 0)
  assert.equal(ran, ids)
  assert.is(running.most, 1, 'one after another: one slot')
  const out = sends(s)
  assert.is(out.length, 1, 'one write')
  assert.equal(out[0].map(r => r.taskId[0]), ids, 'each task its own result')
  assert.equal(signCalls, [TASK_BUNDLE_MAX], 'one signature for the sixteen')
  for (const r of out[0]) {
    assert.is(r.receipt.batch.length, TASK_BUNDLE_MAX)
    const v = verifyReceipt(r.receipt, me)
    assert.ok(v.ok, v.ok ? '' : v.reason)
  }
  await stop()
})

test('a bundle is one unit of the pipeline bound, whatever its size', async () => {
  // runBundle never returns: the stream reads bundles until slots + LEASE_STREAM_QUEUED units are in flight
  const calls: number[] = []
  const provider = { runTask: async () => await new Promise(() => {}), runBundle: async (ts: dbc.task.v1.ITask[]) => { calls.push(ts.length); return await new Promise(() => {}) } }
  const { s } = serve(provider, { slots: 1 })
  const frames: Uint8Array[] = []
  for (let b = 0; b < 12; b++) frames.push(bundleFrame(Array.from({ length: TASK_BUNDLE_MAX }, (_, i) => task(b * TASK_BUNDLE_MAX + i))))
  s.deliver(Buffer.concat(frames))
  await turns(100)
  assert.is(calls.length, 1 + LEASE_STREAM_QUEUED, 'one unit per bundle (8 units: 128 tasks, past the 64-task clamp of single tasks)')
  assert.ok(calls.every(n => n === TASK_BUNDLE_MAX))
  s.end() // its bundles never end: nothing to wait for
})

test('a cancel stops one task of a bundle: it is skipped, the others are answered', async () => {
  const { provider, releases, ran } = rig()
  const { s, stop } = serve(provider)
  s.deliver(bundleFrame([task(1), task(2), task(3)]))
  await turns(20, () => releases.has(1))
  s.deliver(encodeFrame(TaskMessage.encode({ cancelTaskId: new Uint8Array([2]) }).finish()))
  await turns(5)
  releases.get(1)?.()
  await turns(20, () => releases.has(3))
  releases.get(3)?.()
  await turns(50, () => s.sent.length > 0)
  assert.equal(ran, [1, 3], 'the cancelled task never started')
  assert.equal(sends(s).flat().map(r => r.taskId[0]), [1, 3])
  await stop()
})

test('a duplicate id (in the bundle or running) gets its own TASK_DUPLICATE answer; the lease lives', async () => {
  const { provider, releases } = rig()
  const { s, served, stop } = serve(provider)
  s.deliver(encodeFrame(TaskMessage.encode({ task: task(9) }).finish()))
  await turns(20, () => releases.has(9))
  s.deliver(bundleFrame([task(1), task(1), task(9)]))
  await turns(20, () => releases.has(1))
  releases.get(1)?.()
  await turns(50, () => s.sent.length > 0)
  const out = sends(s).flat()
  assert.equal(out.map(r => [r.taskId[0], r.code]), [[1, 'TASK_DUPLICATE'], [9, 'TASK_DUPLICATE'], [1, '']])
  releases.get(9)?.()
  await turns(50, () => sends(s).flat().length === 4)
  assert.equal(sends(s).flat()[3].taskId[0], 9, 'the stream still serves')
  let ended = false
  void served.then(() => { ended = true })
  await turn()
  assert.is(ended, false)
  await stop()
})

const hostile: Array<[string, dbc.task.v1.ITask[], { bundleMax?: number }, string]> = [
  ['a bundle on a lease whose offer said none', [task(1), task(2)], { bundleMax: undefined }, 'BUNDLE_NOT_OFFERED'],
  ['a bundle on a lease whose offer said 1', [task(1)], { bundleMax: 1 }, 'BUNDLE_NOT_OFFERED'],
  ['an empty bundle', [], {}, 'BUNDLE_TOO_LARGE'],
  ['more tasks than the offer\'s bundle_max', [task(1), task(2), task(3)], { bundleMax: 2 }, 'BUNDLE_TOO_LARGE'],
  ['more than TASK_BUNDLE_MAX, whatever the offer claims', Array.from({ length: TASK_BUNDLE_MAX + 1 }, (_, i) => task(i)), { bundleMax: 1000 }, 'BUNDLE_TOO_LARGE'],
  ['a task naming another lease', [task(1), task(2, { leaseId: new Uint8Array([8]) })], {}, 'TASK_WRONG_LEASE'],
  ['mixed executors', [task(1), task(2, { executor: 'process' })], {}, 'BUNDLE_MIXED'],
  ['mixed code', [task(1), task(2, { codeHash: new Uint8Array([6]) })], {}, 'BUNDLE_MIXED'],
  ['mixed entries', [task(1), task(2, { entry: 'other' })], {}, 'BUNDLE_MIXED']
]
for (const [what, tasks, init, code] of hostile) {
  test(`${what}: the stream ends with a typed WireError (${code}), nothing runs`, async () => {
    const { provider, ran } = rig(true)
    const { s, served } = serve(provider, init)
    s.deliver(bundleFrame(tasks))
    const err = await served.then(() => undefined, (e: Error & { code?: string }) => e)
    assert.is(err?.name, 'WireError')
    assert.is(err?.code, code)
    assert.equal(ran, [])
  })
}

test.run()
