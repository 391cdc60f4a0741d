// A provider's lease stream signs the receipts of results written at once with one signature
// (src/net/receipt-batcher.ts, SignedReceipt.batch) when the holder says it checks batches
// (Task.batch_receipts); for an older holder (no flag) every receipt is signed alone, as before.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { FramedStream } from '../../../src/net/framed.js'
import { CoalescingWriter } from '../../../src/net/lease-writer.js'
import { serveLeaseTasks } from '../../../src/net/task-lease-stream.js'
import { encodeFrame, FrameDecoder } from '../../../src/wire/frame.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt, signReceiptBatch, verifyReceipt } from '../../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, signBytes } from '../../../src/core/identity/index.js'
import { createRng } from '../../../src/core/rng.js'
import { FakeStream, fakeConnection } from './fake-stream.js'

const TaskMessage = dbc.task.v1.TaskMessage
const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
const leaseId = new Uint8Array([7, 7])
const secret = createRng(5).bytes(new Uint8Array(32))
const me = peerIdBytesFromEd25519Key(ed25519PublicKey(secret))

/** Results per stream send. */
type Sent = dbc.task.v1.TaskResult & { receipt: dbc.receipt.v1.SignedReceipt }
const sends = (s: FakeStream): Sent[][] => {
  const dec = new FrameDecoder({ maxFrameBytes: 1 << 20 })
  return s.sent.map(c => dec.push(c, 100).map(f => TaskMessage.decode(f as Uint8Array).result as Sent))
}

/** A provider whose tasks end when the test says; it signs receipts as ComputePeer does (alone, or left for signReceipts). */
function rig (withBatches = true): { provider: any, releases: Map<number, () => void>, unsignedAsked: boolean[], signCalls: number[] } {
  const releases = new Map<number, () => void>()
  const unsignedAsked: boolean[] = []
  const signCalls: number[] = []
  const provider: any = {
    runTask: async (task: dbc.task.v1.ITask, _s: Uint8Array, opts: { unsignedReceipt?: boolean } = {}): Promise<dbc.task.v1.ITaskResult> => {
      const n = task.taskId?.[0] ?? 0
      unsignedAsked.push(opts.unsignedReceipt === true)
      await new Promise<void>(resolve => releases.set(n, resolve))
      const r = buildReceipt({ jobId: new Uint8Array([1]), taskId: new Uint8Array([n]), provider: me, consumer: new Uint8Array([2]), usage: { wallMs: 1, cpuMs: 1, gpuSeconds: 0, bytesIn: 8, bytesOut: 8 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), pricingVersion: 1 })
      const receipt = opts.unsignedReceipt === true ? { receipt: dbc.receipt.v1.UsageReceipt.encode(r).finish(), signature: new Uint8Array(0) } : signReceipt(r, secret)
      return { taskId: task.taskId, ok: true, output: new Uint8Array([n]), receipt }
    }
  }
  if (withBatches) provider.signReceipts = (rs: readonly Uint8Array[]) => { signCalls.push(rs.length); return signReceiptBatch(rs, m => signBytes(secret, m)) }
  return { provider, releases, unsignedAsked, signCalls }
}

async function serve (provider: any, flags: boolean[]): Promise<{ s: FakeStream, stop: () => Promise<void> }> {
  const s = new FakeStream()
  const framed = new FramedStream(s as unknown as Stream, { maxFrameBytes: 1 << 20 })
  const writer = new CoalescingWriter(framed, { lingerMs: 60_000 })
  const served = serveLeaseTasks({ framed, writer, connection: fakeConnection('holder') as never, sender: new Uint8Array([1]), provider, leaseId, slots: 4, charge: () => {}, writeTimeoutMs: 10_000 })
  s.deliver(Buffer.concat(flags.map((batchReceipts, i) => encodeFrame(TaskMessage.encode({ task: { leaseId, taskId: new Uint8Array([i + 1]), ...(batchReceipts ? { batchReceipts } : {}) } }).finish()))))
  return { s, stop: async () => { s.end(); await served.catch(() => {}); await writer.close().catch(() => {}) } }
}

test('results written at once share one receipt signature; each receipt verifies alone', async () => {
  const { provider, releases, unsignedAsked, signCalls } = rig()
  const { s, stop } = await serve(provider, [true, true, true])
  for (let i = 0; i < 20 && releases.size < 3; i++) await turn()
  assert.equal(unsignedAsked, [true, true, true], 'the tasks ran with their receipts left for the batch')
  releases.get(1)?.(); releases.get(2)?.()
  for (let i = 0; i < 5; i++) await turn()
  assert.equal(sends(s), [], 'results wait while task 3 runs')
  releases.get(3)?.()
  for (let i = 0; i < 10 && s.sent.length === 0; i++) await turn()
  const out = sends(s)
  assert.is(out.length, 1, 'one write')
  assert.equal(out[0].map(r => r.taskId[0]), [1, 2, 3])
  assert.equal(signCalls, [3], 'one signature for the three')
  for (const r of out[0]) {
    assert.is(r.receipt.batch.length, 3)
    const v = verifyReceipt(r.receipt, me)
    assert.ok(v.ok, v.ok ? '' : v.reason)
    if (v.ok) assert.is(v.receipt.taskId[0], r.taskId[0])
  }
  await stop()
})

test('an older holder (no batch_receipts): each receipt signed alone, no batch field', async () => {
  const { provider, releases, unsignedAsked, signCalls } = rig()
  const { s, stop } = await serve(provider, [false, false])
  for (let i = 0; i < 20 && releases.size < 2; i++) await turn()
  assert.equal(unsignedAsked, [false, false])
  releases.get(1)?.(); releases.get(2)?.()
  for (let i = 0; i < 10 && s.sent.length === 0; i++) await turn()
  const out = sends(s).flat()
  assert.is(out.length, 2)
  assert.equal(signCalls, [])
  for (const r of out) {
    assert.is(r.receipt.batch.length, 0)
    assert.ok(verifyReceipt(r.receipt, me).ok)
  }
  await stop()
})

test('a provider without signReceipts (an older one, a test double) ignores the flag: receipts signed as they run', async () => {
  const { provider, releases, unsignedAsked } = rig(false)
  const { s, stop } = await serve(provider, [true])
  for (let i = 0; i < 20 && releases.size < 1; i++) await turn()
  assert.equal(unsignedAsked, [false])
  releases.get(1)?.()
  for (let i = 0; i < 10 && s.sent.length === 0; i++) await turn()
  const [r] = sends(s).flat()
  assert.is(r.receipt.batch.length, 0)
  assert.ok(verifyReceipt(r.receipt, me).ok)
  await stop()
})

test.run()
