// The submitter's lease channel with TaskBundles (src/net/lease-task-channel.ts): copies run in one
// turn on a lease opened for bundles leave as one TaskBundle frame, chunked by the bundle size and
// by LEASE_STREAM_MAX_TASK_BYTES; a lone copy leaves as a plain Task frame; the frames decode as
// protobufjs encodes them; a copy cancelled before its turn ended never goes out, and a cancel of
// one task of a bundle that went is a cancel frame for that task alone, its siblings answered.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { FramedStream } from '../../../src/net/framed.js'
import { LeaseTaskChannel } from '../../../src/net/lease-task-channel.js'
import { LEASE_STREAM_MAX_TASK_BYTES } from '../../../src/net/task-lease-stream.js'
import { bundleFrame, taskFrame } from '../../../src/net/task-frames.js'
import { FrameDecoder, encodeFrame } from '../../../src/wire/frame.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { FakeStream } from './fake-stream.js'

const TaskMessage = dbc.task.v1.TaskMessage
const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

/** Every TaskMessage the submitter wrote, decoded. */
const sentMessages = (s: FakeStream): dbc.task.v1.TaskMessage[] => {
  const dec = new FrameDecoder({ maxFrameBytes: 1 << 22 })
  return s.sent.flatMap(c => dec.push(c, 10_000)).map(f => TaskMessage.decode(f as Uint8Array))
}

const task = (i: number, input = new Uint8Array([i])): dbc.task.v1.ITask => ({ taskId: new Uint8Array([7, i]), leaseId: new Uint8Array([1]), index: i, attempt: 1, executor: 'wasm', input })
const bytesOf = (t: dbc.task.v1.ITask): Uint8Array => dbc.task.v1.Task.encode(t).finish()

function channel (): { s: FakeStream, ch: LeaseTaskChannel, pumping: Promise<void> } {
  const s = new FakeStream()
  const ch = new LeaseTaskChannel(new FramedStream(s as unknown as Stream, { maxFrameBytes: 1 << 22 }), () => {})
  return { s, ch, pumping: ch.pump() }
}

/** The provider answers task `i` (a result frame on the stream). */
const answer = (s: FakeStream, i: number): void => { s.deliver(encodeFrame(TaskMessage.encode({ result: { taskId: new Uint8Array([7, i]), attempt: 1, ok: true, output: new Uint8Array([i, i]) } }).finish())) }

test('the frames are what protobufjs encodes', () => {
  const ts = [task(1), task(2, new Uint8Array(300))]
  assert.equal([...taskFrame(bytesOf(ts[0]))], [...TaskMessage.encode({ task: ts[0] }).finish()])
  assert.equal([...bundleFrame(ts.map(bytesOf))], [...TaskMessage.encode({ bundle: { tasks: ts } }).finish()])
})

test('copies run in one turn leave as one TaskBundle frame; each gets its own result', async () => {
  const { s, ch } = channel()
  const sizes: number[] = []
  const runs = [0, 1, 2, 3].map(async i => await ch.run(task(i), bytesOf(task(i)), { bundle: 16, onSent: n => { sizes.push(n) } }))
  await turn()
  const msgs = sentMessages(s)
  assert.is(msgs.length, 1, 'one frame')
  assert.is(msgs[0].bundle?.tasks?.length, 4)
  assert.equal(msgs[0].bundle?.tasks?.map(t => t.index), [0, 1, 2, 3])
  assert.equal(sizes, [4, 4, 4, 4])
  assert.is(ch.bundleFrames, 1)
  assert.is(ch.bundledTasks, 4)
  for (const i of [2, 0, 3, 1]) answer(s, i)
  const rs = await Promise.all(runs)
  assert.equal(rs.map(r => r.output?.[0]), [0, 1, 2, 3])
})

test('a lone copy, and any copy without a bundle size, leaves as a plain Task frame', async () => {
  const { s, ch } = channel()
  const sizes: number[] = []
  const lone = ch.run(task(0), bytesOf(task(0)), { bundle: 16, onSent: n => { sizes.push(n) } })
  await turn()
  const plain = [1, 2].map(async i => await ch.run(task(i), bytesOf(task(i)), { onSent: n => { sizes.push(n) } }))
  await turn()
  const msgs = sentMessages(s)
  assert.is(msgs.length, 3)
  assert.ok(msgs.every(m => m.task != null && m.bundle == null), 'three Task frames')
  assert.equal(sizes, [1, 1, 1])
  assert.is(ch.bundleFrames, 0)
  for (const i of [0, 1, 2]) answer(s, i)
  await Promise.all([lone, ...plain])
})

test('a turn\'s copies are chunked by the bundle size and by LEASE_STREAM_MAX_TASK_BYTES', async () => {
  const { s, ch } = channel()
  const runs = Array.from({ length: 10 }, async (_, i) => await ch.run(task(i), bytesOf(task(i)), { bundle: 4 }))
  await turn()
  assert.equal(sentMessages(s).map(m => m.bundle?.tasks?.length ?? (m.task != null ? 1 : 0)), [4, 4, 2], 'bundles of at most 4')
  // three inputs of 100 KiB: two fit one frame under the byte bound, the third goes in the next
  const big = Array.from({ length: 3 }, (_, i) => task(20 + i, new Uint8Array(100 * 1024)))
  const bigRuns = big.map(async t => await ch.run(t, bytesOf(t), { bundle: 16 }))
  await turn()
  const frames = sentMessages(s).slice(3)
  assert.equal(frames.map(m => m.bundle?.tasks?.length ?? (m.task != null ? 1 : 0)), [2, 1])
  for (const m of frames) assert.ok(TaskMessage.encode(m).finish().length <= LEASE_STREAM_MAX_TASK_BYTES)
  for (let i = 0; i < 10; i++) answer(s, i)
  for (let i = 20; i < 23; i++) answer(s, i)
  await Promise.all([...runs, ...bigRuns])
})

test('a copy cancelled before its turn ended never goes out; a cancel of one task of a sent bundle names that task alone', async () => {
  const { s, ch } = channel()
  const early = new AbortController()
  const late = new AbortController()
  const runs = Promise.allSettled([0, 1, 2, 3].map(async i => await ch.run(task(i), bytesOf(task(i)), { bundle: 16, signal: i === 0 ? early.signal : i === 2 ? late.signal : undefined })))
  early.abort(new Error('cancelled at once'))
  await turn()
  let msgs = sentMessages(s)
  assert.is(msgs.length, 1)
  assert.equal(msgs[0].bundle?.tasks?.map(t => t.index), [1, 2, 3], 'the copy cancelled before the turn ended is not in the bundle')
  assert.ok(!msgs.some(m => m.cancelTaskId != null && m.cancelTaskId.length > 0), 'nothing to cancel for a copy that never went')
  late.abort(new Error('cancelled after it went'))
  await turn()
  msgs = sentMessages(s)
  const cancels = msgs.filter(m => m.cancelTaskId != null && m.cancelTaskId.length > 0)
  assert.is(cancels.length, 1)
  assert.equal([...(cancels[0].cancelTaskId ?? [])], [7, 2])
  answer(s, 1); answer(s, 3)
  // the cancelled copy's result, should it come, is dropped uncounted
  answer(s, 2)
  const rs = await runs
  assert.equal(rs.map(r => r.status), ['rejected', 'fulfilled', 'rejected', 'fulfilled'])
  await turn()
  assert.is(ch.unknownResults, 0)
})

test('the stream ending before the turn ended loses the batched copies (they run elsewhere)', async () => {
  const { s, ch, pumping } = channel()
  const runs = Promise.allSettled([0, 1].map(async i => await ch.run(task(i), bytesOf(task(i)), { bundle: 16 })))
  s.end()
  await pumping
  const rs = await runs
  assert.ok(rs.every(r => r.status === 'rejected'))
  await turn()
  assert.is(sentMessages(s).length, 0)
})

test.run()
