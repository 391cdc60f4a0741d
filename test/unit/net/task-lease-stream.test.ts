// Tasks ride the lease's own stream (src/net/task-lease-stream.ts), between two hosts in this
// process: many tasks in flight on one stream with results matched by task id, a cancel reaching
// the provider, a broken stream losing the copies in flight (and refusing new ones as LEASE_LOST),
// and a holder that never reads its results: the provider runs no more than its pipeline bound
// (unwritten results count) and ends the lease when results stay unread past its write timeout.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport, TASK_PROTOCOL } from '../../../src/net/tasks.js'
import { LEASE_STREAM_MAX_INFLIGHT, LEASE_STREAM_QUEUED } from '../../../src/net/task-lease-stream.js'
import { FramedStream } from '../../../src/net/framed.js'
import type { LocalProvider } from '../../../src/core/scheduler/ports.js'
import { DbcError } from '../../../src/errors.js'
import { dbc } from '../../../src/wire/gen/wire.js'

/** Grants every lease; each task waits for `gate` (when set), then answers its input back (`outputBytes` long when set). */
class Echo implements LocalProvider {
  readonly id = 'echo'
  calls = 0
  running = 0
  aborted = 0
  closed = 0
  gate: Promise<void> | undefined
  outputBytes = 0
  /** The lease's slots as this provider tells the lease stream (task-lease-stream.ts reads slots + LEASE_STREAM_QUEUED ahead). */
  slots = 64
  /** Input bytes of the tasks in runTask now, and the most at once. */
  heldBytes = 0
  maxHeld = 0
  maxRunning = 0
  /** When set, each task waits for its own release (one per call, in order). */
  releases: Array<() => void> | undefined
  leaseSlotCount (): number { return this.slots }
  offer (): dbc.task.v1.IOffer { return { offerId: new Uint8Array([1]), slots: 4, expiresAt: Date.now() + 60_000 } }
  openLease (): void {}
  closeLease (): void { this.closed++ }
  leasedInputBytes (): number { return 0 }
  async runTask (task: dbc.task.v1.ITask, _sender: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<dbc.task.v1.ITaskResult> {
    this.calls++
    this.running++
    const bytes = task.input?.length ?? 0
    this.heldBytes += bytes
    this.maxHeld = Math.max(this.maxHeld, this.heldBytes)
    this.maxRunning = Math.max(this.maxRunning, this.running)
    try {
      if (this.releases !== undefined) {
        const mine = new Promise<void>(resolve => { this.releases?.push(resolve) })
        await Promise.race([mine, new Promise<void>(resolve => { opts.signal?.addEventListener('abort', () => { this.aborted++; resolve() }, { once: true }) })])
      }
      if (this.gate !== undefined) {
        await Promise.race([this.gate, new Promise<void>(resolve => { opts.signal?.addEventListener('abort', () => { this.aborted++; resolve() }, { once: true }) })])
      }
      const output = this.outputBytes > 0 ? new Uint8Array(this.outputBytes).fill(task.input?.[0] ?? 0) : task.input
      return { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: true, output }
    } finally { this.running--; this.heldBytes -= bytes }
  }
}

const newHost = async (): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })

async function until (cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function pair (init: { writeTimeoutMs?: number } = {}, charged: string[] = []): Promise<{ providerHost: Host, submitter: Host, provider: Echo, tr: Libp2pJobTransport, stop: () => Promise<void> }> {
  const providerHost = await newHost()
  const submitter = await newHost()
  const provider = new Echo()
  await registerTaskProtocol(providerHost, provider, { heartbeatMs: 200, onBadInput: (_peer, err) => { charged.push(err.code) }, ...init })
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [providerHost.peerId], offerTimeoutMs: 15_000 })
  await submitter.dial(providerHost.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
  return { providerHost, submitter, provider, tr, stop: async () => { tr.close(); await submitter.stop(); await providerHost.stop() } }
}

const taskStreams = (h: Host): number => h.getConnections().reduce((n, c) => n + c.streams.filter(s => s.protocol === TASK_PROTOCOL).length, 0)

test('many tasks in flight on the lease stream alone; results matched by task id; a cancel reaches the provider', async () => {
  const { providerHost, provider, tr, submitter, stop } = await pair()
  try {
    const id = providerHost.peerId.toString()
    const leaseId = new Uint8Array(randomBytes(16))
    await tr.openLease(id, { leaseId, heartbeatMs: 200 }, { signal: AbortSignal.timeout(15_000) })
    let open!: () => void
    provider.gate = new Promise(resolve => { open = resolve })
    const n = 20
    const cancel = new AbortController()
    const runs = Array.from({ length: n }, async (_, i) => await tr.runTask(id, { taskId: new Uint8Array([i, 7]), leaseId, attempt: 1, input: new Uint8Array([i]) }, { signal: i === 0 ? cancel.signal : AbortSignal.timeout(60_000) }))
    const settled = Promise.allSettled(runs)
    await until(() => provider.running === n, 'every task running at the provider')
    assert.is(taskStreams(submitter), 1, 'one task-protocol stream (the lease\'s) carries all of them')
    cancel.abort(new Error('cancelled here'))
    await until(() => provider.aborted === 1, 'the cancel at the provider')
    open()
    const out = await settled
    assert.is(out[0].status, 'rejected', 'the cancelled copy rejects with its abort')
    for (let i = 1; i < n; i++) {
      const r = out[i]
      assert.is(r.status, 'fulfilled')
      if (r.status === 'fulfilled') assert.equal([...(r.value.output ?? [])], [i], `task ${i} got its own result`)
    }
  } finally { await stop() }
})

test('a broken lease stream loses the copies in flight (not failed results) and later sends are LEASE_LOST', async () => {
  const { providerHost, provider, tr, submitter, stop } = await pair()
  try {
    const id = providerHost.peerId.toString()
    const leaseId = new Uint8Array(randomBytes(16))
    await tr.openLease(id, { leaseId, heartbeatMs: 200 }, { signal: AbortSignal.timeout(15_000) })
    provider.gate = new Promise(() => {})
    const runs = Array.from({ length: 3 }, async (_, i) => await tr.runTask(id, { taskId: new Uint8Array([i]), leaseId, attempt: 1, input: new Uint8Array([i]) }, { signal: AbortSignal.timeout(60_000) }))
    const settled = Promise.allSettled(runs)
    await until(() => provider.running === 3, 'three tasks running')
    for (const c of submitter.getConnections()) for (const s of c.streams) if (s.protocol === TASK_PROTOCOL) s.abort(new Error('the network broke'))
    const out = await settled
    for (const r of out) {
      assert.is(r.status, 'rejected')
      if (r.status === 'rejected') assert.not.ok(r.reason instanceof DbcError, 'lost (the runner sends it again elsewhere), not a failed copy')
    }
    await until(() => provider.aborted === 3 && provider.closed === 1, 'the provider cancelled the tasks and closed the lease')
    const again = await tr.runTask(id, { taskId: new Uint8Array([9]), leaseId, attempt: 1, input: new Uint8Array([9]) }, { signal: AbortSignal.timeout(60_000) }).catch((e: Error) => e)
    assert.ok(again instanceof DbcError && again.code === 'LEASE_LOST', String(again))
  } finally { await stop() }
})

test('a holder that never reads its results: the provider runs at most its pipeline bound, then ends the lease', async () => {
  const { providerHost, provider, submitter, stop } = await pair({ writeTimeoutMs: 1500 })
  try {
    provider.outputBytes = 256 * 1024 // results that fill the stream's window quickly
    const stream = await submitter.dialProtocol(providerHost.peerId, TASK_PROTOCOL)
    const framed = new FramedStream(stream, { maxFrameBytes: 64 * 1024 * 1024 })
    const leaseId = new Uint8Array(randomBytes(16))
    await framed.write(dbc.task.v1.TaskMessage.encode({ lease: { leaseId, heartbeatMs: 5000 } }).finish())
    const first = dbc.task.v1.TaskMessage.decode(await framed.readRequired({ signal: AbortSignal.timeout(15_000) }))
    assert.ok(first.heartbeat != null, 'the lease is granted')
    stream.pause() // nothing read from here on: the provider's writes back up
    // 6x the bound of tasks, and never a read again
    const frames = LEASE_STREAM_MAX_INFLIGHT * 6
    const writes = Array.from({ length: frames }, async (_, i) => await framed.write(dbc.task.v1.TaskMessage.encode({ task: { taskId: new Uint8Array([i & 255, i >> 8]), leaseId, attempt: 1, input: new Uint8Array([i & 255]) } }).finish(), { signal: AbortSignal.timeout(60_000) }).catch(() => {}))
    await until(() => provider.calls >= LEASE_STREAM_MAX_INFLIGHT || provider.closed > 0, 'the pipeline filled')
    await until(() => provider.closed === 1, 'the lease ended for unread results')
    // the bound counts tasks running or holding an unwritten result; what the transport absorbed
    // (the stream's window, the holder's paused buffer) let a few dozen more results out
    assert.ok(provider.calls < frames / 2, `ran ${provider.calls} of ${frames} tasks for a holder that read none of their results (bound ${LEASE_STREAM_MAX_INFLIGHT} unwritten)`)
    await Promise.all(writes)
  } finally { await stop() }
})

test('a 1-slot lease with many large inputs: the provider holds at most slots + LEASE_STREAM_QUEUED of them', async () => {
  const { providerHost, provider, tr, stop } = await pair()
  try {
    provider.slots = 1
    provider.releases = []
    const id = providerHost.peerId.toString()
    const leaseId = new Uint8Array(randomBytes(16))
    await tr.openLease(id, { leaseId, heartbeatMs: 200 }, { signal: AbortSignal.timeout(15_000) })
    const n = 30
    const inputBytes = 200 * 1024 // under LEASE_STREAM_MAX_TASK_BYTES: each rides the lease stream
    const runs = Array.from({ length: n }, async (_, i) => await tr.runTask(id, { taskId: new Uint8Array([i, 9]), leaseId, attempt: 1, input: new Uint8Array(inputBytes).fill(i) }, { signal: AbortSignal.timeout(120_000) }))
    const settled = Promise.allSettled(runs)
    const bound = 1 + LEASE_STREAM_QUEUED
    // release one task each time the provider holds all it will read ahead (or all that are left)
    for (let done = 0; done < n; done++) {
      await until(() => (provider.releases?.length ?? 0) > 0 && provider.running >= Math.min(bound, n - done), `task ${done} held`, 120_000)
      provider.releases?.shift()?.()
    }
    const out = await settled
    out.forEach((r, i) => {
      assert.is(r.status, 'fulfilled')
      if (r.status === 'fulfilled') assert.is(r.value.output?.[0], i, `task ${i} got its own result`)
    })
    assert.ok(provider.maxRunning <= bound, `at most ${bound} tasks of a 1-slot lease at once (was ${provider.maxRunning})`)
    assert.ok(provider.maxHeld <= bound * inputBytes, `at most ${bound} inputs held (held ${provider.maxHeld} bytes)`)
  } finally { await stop() }
})

/** Opens a lease on a raw stream (a hostile or hand-driven holder) and returns its framed stream. */
async function rawLease (submitter: Host, providerHost: Host, leaseId: Uint8Array): Promise<FramedStream> {
  const stream = await submitter.dialProtocol(providerHost.peerId, TASK_PROTOCOL)
  const framed = new FramedStream(stream, { maxFrameBytes: 64 * 1024 * 1024 })
  await framed.write(dbc.task.v1.TaskMessage.encode({ lease: { leaseId, heartbeatMs: 5000 } }).finish())
  const first = dbc.task.v1.TaskMessage.decode(await framed.readRequired({ signal: AbortSignal.timeout(15_000) }))
  assert.ok(first.heartbeat != null, 'the lease is granted')
  return framed
}

/** The next result on a raw lease stream (heartbeats skipped); undefined when the stream ended. */
async function nextResult (framed: FramedStream): Promise<dbc.task.v1.ITaskResult | undefined> {
  for (;;) {
    const f = await framed.read({ signal: AbortSignal.timeout(60_000) }).catch(() => undefined)
    if (f === undefined) return undefined
    let m: dbc.task.v1.TaskMessage
    try { m = dbc.task.v1.TaskMessage.decode(f) } catch { return undefined }
    if (m.result != null) return m.result
    if (m.heartbeat == null) return undefined
  }
}

test('a task naming another lease on this lease stream is refused typed and charged (TASK_WRONG_LEASE)', async () => {
  const charged: string[] = []
  const { providerHost, provider, submitter, stop } = await pair({}, charged)
  try {
    const leaseId = new Uint8Array(randomBytes(16))
    const framed = await rawLease(submitter, providerHost, leaseId)
    await framed.write(dbc.task.v1.TaskMessage.encode({ task: { taskId: new Uint8Array([1]), leaseId: new Uint8Array(randomBytes(16)), attempt: 1, input: new Uint8Array([1]) } }).finish())
    assert.is(await nextResult(framed), undefined, 'no result: the stream ends')
    await until(() => charged.includes('TASK_WRONG_LEASE') && provider.closed === 1, 'the charge and the lease closed')
    assert.is(provider.calls, 0, 'the task never ran')
  } finally { await stop() }
})

test('a duplicate task id while the first runs: a typed TASK_DUPLICATE result, the lease lives, nothing charged', async () => {
  const charged: string[] = []
  const { providerHost, provider, submitter, stop } = await pair({}, charged)
  try {
    provider.releases = []
    const leaseId = new Uint8Array(randomBytes(16))
    const framed = await rawLease(submitter, providerHost, leaseId)
    const task = (input: number): Uint8Array => dbc.task.v1.TaskMessage.encode({ task: { taskId: new Uint8Array([7]), leaseId, attempt: 1, input: new Uint8Array([input]) } }).finish()
    await framed.write(task(1))
    await until(() => provider.running === 1, 'the first copy running')
    await framed.write(task(2))
    const dup = await nextResult(framed)
    assert.is(dup?.code, 'TASK_DUPLICATE')
    assert.is(dup?.ok, false)
    provider.releases.shift()?.()
    const first = await nextResult(framed)
    assert.is(first?.ok, true)
    assert.equal([...(first?.output ?? [])], [1])
    // the id is free once answered: the same id again runs
    await framed.write(task(3))
    await until(() => (provider.releases?.length ?? 0) === 1, 'the resend running')
    provider.releases.shift()?.()
    const again = await nextResult(framed)
    assert.equal([...(again?.output ?? [])], [3])
    assert.equal(charged, [], 'nothing charged')
    assert.is(provider.closed, 0, 'the lease is still open')
    await framed.close()
  } finally { await stop() }
})

test.run()
