// The submitter's side of a lease stream against a hostile provider (src/net/task-lease-stream.ts):
// results for tasks not in flight are dropped and counted, and past LEASE_STREAM_MAX_UNKNOWN_RESULTS
// the lease stream ends (the lease is lost); with no copy in flight only heartbeat-sized frames are
// read, while a large result for a copy in flight still comes through.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../../src/net/host.js'
import { Libp2pJobTransport, TASK_PROTOCOL } from '../../../src/net/tasks.js'
import { LEASE_STREAM_MAX_UNKNOWN_RESULTS, LEASE_STREAM_IDLE_FRAME } from '../../../src/net/task-lease-stream.js'
import { FramedStream } from '../../../src/net/framed.js'
import { DbcError } from '../../../src/errors.js'
import { dbc } from '../../../src/wire/gen/wire.js'

const TaskMessage = dbc.task.v1.TaskMessage
const newHost = async (): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })

async function until (cond: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** A provider driven by the test: grants the lease, then hands its framed stream to the test. */
async function hostile (): Promise<{ providerHost: Host, tr: Libp2pJobTransport, leaseId: Uint8Array, provider: string, framed: FramedStream, stop: () => Promise<void> }> {
  const providerHost = await newHost()
  const submitter = await newHost()
  let got!: (f: FramedStream) => void
  const framedP = new Promise<FramedStream>(resolve => { got = resolve })
  await providerHost.handle(TASK_PROTOCOL, (stream: Stream) => {
    const framed = new FramedStream(stream, { maxFrameBytes: 16 * 1024 * 1024 })
    void (async () => {
      const m = TaskMessage.decode(await framed.readRequired({ signal: AbortSignal.timeout(15_000) }))
      await framed.write(TaskMessage.encode({ heartbeat: { leaseId: m.lease?.leaseId, at: Date.now() } }).finish())
      got(framed)
    })()
  }, { runOnLimitedConnection: true })
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [providerHost.peerId], offerTimeoutMs: 15_000 })
  await submitter.dial(providerHost.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
  const leaseId = new Uint8Array(randomBytes(16))
  const provider = providerHost.peerId.toString()
  await tr.openLease(provider, { leaseId, heartbeatMs: 5000 }, { signal: AbortSignal.timeout(15_000) })
  return { providerHost, tr, leaseId, provider, framed: await framedP, stop: async () => { tr.close(); await submitter.stop(); await providerHost.stop() } }
}

const result = (taskId: Uint8Array | null | undefined, output: Uint8Array): Uint8Array => TaskMessage.encode({ result: { taskId, ok: true, output } }).finish()

/** Resolves when the submitter ended the lease stream (the provider's reads end or fail). */
async function ended (framed: FramedStream): Promise<void> {
  for (;;) {
    const f = await framed.read({ signal: AbortSignal.timeout(60_000) }).catch((e: Error) => e)
    if (f === undefined) return
    if (f instanceof Error) {
      // our own read timeout is not an end; a reset or an abort from the submitter is
      if (f.name === 'TimeoutError' || /due to timeout/.test(f.message)) throw new Error(`the lease stream did not end: ${f.message}`)
      return
    }
  }
}

const lost = async (tr: Libp2pJobTransport, provider: string, leaseId: Uint8Array): Promise<boolean> => {
  const e = await tr.runTask(provider, { taskId: new Uint8Array([0xee]), leaseId, attempt: 1, input: new Uint8Array([0]) }, { signal: AbortSignal.timeout(30_000) }).catch((err: Error) => err)
  return e instanceof DbcError && e.code === 'LEASE_LOST'
}

test('results for tasks not in flight: dropped and counted; past the limit the lease stream ends', async () => {
  const { tr, leaseId, provider, framed, stop } = await hostile()
  try {
    for (let i = 0; i < LEASE_STREAM_MAX_UNKNOWN_RESULTS - 1; i++) await framed.write(result(new Uint8Array([i, 1]), new Uint8Array([1])))
    // a copy in flight still gets its own result (the stream lives)
    const run = tr.runTask(provider, { taskId: new Uint8Array([5, 5]), leaseId, attempt: 1, input: new Uint8Array([5]) }, { signal: AbortSignal.timeout(60_000) })
    for (;;) {
      const m = TaskMessage.decode((await framed.read({ signal: AbortSignal.timeout(30_000) })) ?? new Uint8Array())
      if (m.task != null) { await framed.write(result(m.task.taskId, new Uint8Array([42]))); break }
    }
    const r = await run
    assert.equal([...(r.output ?? [])], [42])
    // one more unknown result: the submitter ends the lease stream, and the lease is lost
    await framed.write(result(new Uint8Array([99, 1]), new Uint8Array([1]))).catch(() => {})
    await ended(framed)
    await until(async () => await lost(tr, provider, leaseId), 'the lease lost')
  } finally { await stop() }
})

test('no copy in flight: a frame past a heartbeat\'s size ends the lease stream; a large result for a copy in flight comes through', async () => {
  const { tr, leaseId, provider, framed, stop } = await hostile()
  try {
    const run = tr.runTask(provider, { taskId: new Uint8Array([1, 2]), leaseId, attempt: 1, input: new Uint8Array([1]) }, { signal: AbortSignal.timeout(60_000) })
    for (;;) {
      const m = TaskMessage.decode((await framed.read({ signal: AbortSignal.timeout(30_000) })) ?? new Uint8Array())
      if (m.task != null) { await framed.write(result(m.task.taskId, new Uint8Array(1024 * 1024).fill(7))); break }
    }
    const r = await run
    assert.is(r.output?.length, 1024 * 1024, 'a 1 MiB result for a copy in flight')
    await framed.write(result(new Uint8Array([9, 9]), new Uint8Array(LEASE_STREAM_IDLE_FRAME * 4))).catch(() => {})
    await ended(framed)
    await until(async () => await lost(tr, provider, leaseId), 'the lease lost to an oversized idle frame')
  } finally { await stop() }
})

test.run()
