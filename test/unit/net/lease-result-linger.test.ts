// A provider's lease stream (src/net/task-lease-stream.ts) sends a result while more of the
// lease's tasks still run lingering (src/net/lease-writer.ts LEASE_WRITE_LINGER_MS): results of
// tiny tasks leave several to a stream write instead of one each; the last one running goes at
// the next turn, never held.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { FramedStream } from '../../../src/net/framed.js'
import { CoalescingWriter } from '../../../src/net/lease-writer.js'
import { serveLeaseTasks } from '../../../src/net/task-lease-stream.js'
import { encodeFrame, FrameDecoder } from '../../../src/wire/frame.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { FakeStream, fakeConnection } from './fake-stream.js'

const TaskMessage = dbc.task.v1.TaskMessage
const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
const leaseId = new Uint8Array([7, 7])

/** Result task ids per stream send. */
const sends = (s: FakeStream): number[][] => {
  const dec = new FrameDecoder({ maxFrameBytes: 1 << 20 })
  return s.sent.map(c => dec.push(c, 100).map(f => TaskMessage.decode(f as Uint8Array).result?.taskId?.[0] ?? -1))
}

test('a result lingers while the lease runs more tasks; the results of two tasks leave in one write, a lone last one at once', async () => {
  const s = new FakeStream()
  const framed = new FramedStream(s as unknown as Stream, { maxFrameBytes: 1 << 20 })
  const releases = new Map<number, () => void>()
  const provider = {
    runTask: async (task: dbc.task.v1.ITask): Promise<dbc.task.v1.ITaskResult> => {
      const n = task.taskId?.[0] ?? 0
      await new Promise<void>(resolve => releases.set(n, resolve))
      return { taskId: task.taskId, ok: true, output: new Uint8Array([n]) }
    }
  }
  // a long linger: only the lease's last running task ends it early
  const writer = new CoalescingWriter(framed, { lingerMs: 60_000 })
  const served = serveLeaseTasks({ framed, writer, connection: fakeConnection('holder') as never, sender: new Uint8Array([1]), provider, leaseId, slots: 2, charge: () => {}, writeTimeoutMs: 10_000 })
  s.deliver(Buffer.concat([1, 2].map(n => encodeFrame(TaskMessage.encode({ task: { leaseId, taskId: new Uint8Array([n]) } }).finish()))))
  for (let i = 0; i < 20 && releases.size < 2; i++) await turn()
  assert.is(releases.size, 2)
  releases.get(1)?.()
  for (let i = 0; i < 5; i++) await turn()
  assert.equal(sends(s), [], 'task 1\'s result waits: task 2 still runs')
  releases.get(2)?.()
  for (let i = 0; i < 5; i++) await turn()
  assert.equal(sends(s), [[1, 2]], 'both results in one write once the last running task ended')
  s.deliver(encodeFrame(TaskMessage.encode({ task: { leaseId, taskId: new Uint8Array([3]) } }).finish()))
  for (let i = 0; i < 20 && !releases.has(3); i++) await turn()
  releases.get(3)?.()
  for (let i = 0; i < 5; i++) await turn()
  assert.equal(sends(s), [[1, 2], [3]], 'a lone task\'s result is not held')
  s.end()
  await served.catch(() => {})
  await writer.close().catch(() => {})
})

test.run()
