// Tasks on a lease's own stream (/dbc/task/1.0.0): once a provider accepted a lease (its first
// heartbeat), the holder sends many Task frames on that stream and the provider answers each with
// a TaskResult tagged by task id, pipelined, between its heartbeats; a cancel_task_id stops one.
// One stream per lease instead of one per task: no stream open, multistream-select or peer-store
// touch per task (a third of the submitter's CPU when each task had its own stream).
//
// Hostile-input rules: the provider reads a stream's next task only while fewer than the lease's
// slots + LEASE_STREAM_QUEUED of its tasks are running or waiting to write their result (slots
// clamped to LEASE_STREAM_MAX_INFLIGHT), while the inputs it holds for the lease stay under its byte cap
// and the holder's inputs held across all its leases stay under the per-peer budget; a frame past
// LEASE_STREAM_MAX_TASK_BYTES does not ride a lease stream (tasks.ts caps it). Unread frames wait
// in the stream's bounded buffers (the guard's budgets), and a result unread for the write timeout
// ends the lease. A task naming another lease, or a task id already running, is refused typed. A
// broken stream is a lost lease: the holder's copies in flight on it are lost, never failed.
import type { Connection } from '@libp2p/interface'
import { FramedStream } from './framed.js'
import { CoalescingWriter } from './lease-writer.js'
import { ReceiptBatcher, awaitsBatchSignature } from './receipt-batcher.js'
import { decodeMessage } from '../wire/decode.js'
import { dbc } from '../wire/gen/wire.js'
import { WireError, DbcError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import { LEASE_TASKS_AHEAD, TASK_BUNDLE_MAX, withOwnCode, type ChargedError, type LocalProvider } from '../core/scheduler/ports.js'
import { limitBytesLeft, wireBytes } from './routes/index.js'

const TaskMessage = dbc.task.v1.TaskMessage

/** Most tasks of one lease stream a provider runs or answers at once, whatever the lease's slots; more wait unread. */
export const LEASE_STREAM_MAX_INFLIGHT = 64
/**
 * Tasks read beyond the lease's slots (the next one waits in memory, not a round trip away). One
 * more than a holder reads ahead (runner-leases.ts LEASE_READ_AHEAD): the stream always has room to
 * read the next frame, so a cancel is read at once, not after some task of the lease ends.
 */
export const LEASE_STREAM_QUEUED = LEASE_TASKS_AHEAD + 1
/** The slots assumed for a provider that does not say (test doubles): the byte caps still hold. */
export const LEASE_STREAM_DEFAULT_SLOTS = 16
/** Task input bytes one peer's lease streams may hold at a provider at once, across its leases. */
export const LEASE_STREAM_PEER_BYTES = 32 * 1024 * 1024
/** The largest frame a submitter reads on a lease stream with no copy in flight (heartbeats, a refusal). */
export const LEASE_STREAM_IDLE_FRAME = 4096
/** Results for tasks not in flight (nor cancelled lately) after which the submitter ends the lease stream. */
export const LEASE_STREAM_MAX_UNKNOWN_RESULTS = 16
/** How long a cancelled copy's late result is expected (the provider's write timeout, twice). */
export const LEASE_STREAM_CANCEL_GRACE_MS = 60_000
/** Cancelled copies remembered per lease stream (the oldest are forgotten first). */
export const LEASE_STREAM_MAX_CANCELLED = 1024
/** How long a closed lease stream waits for the provider to close its end before it is reset (what it holds is then released). */
export const LEASE_STREAM_CLOSE_GRACE_MS = 5_000
/** Larger task frames go on a stream of their own (a big input gains nothing from the pipeline, and a refusal of it stays one task's). */
export const LEASE_STREAM_MAX_TASK_BYTES = 256 * 1024

export interface LeaseTaskServer {
  framed: FramedStream
  /** Writes results batched per turn (default: one of its own on `framed`; pass the heartbeats' to share it). */
  writer?: CoalescingWriter
  connection: Pick<Connection, 'limits'>
  sender: Uint8Array
  provider: Pick<LocalProvider, 'runTask' | 'runBundle' | 'signReceipts'>
  /** The stream's own lease: a task naming another one is a violation (charged). */
  leaseId: Uint8Array
  /** The lease's task slots (its offer's); LEASE_STREAM_DEFAULT_SLOTS when unknown. */
  slots?: number
  /** The lease's offer's bundle_max: the most tasks one TaskBundle frame may carry (absent or < 2: a bundle is a violation). */
  bundleMax?: number
  /** Charges the sender for a task no honest submitter sends (the module rule). */
  charge: (err: ChargedError) => void
  /** How long results may stay unread before the lease ends (the default writer's drain timeout). */
  writeTimeoutMs: number
  /** Upper clamp on tasks running or answering (LEASE_STREAM_MAX_INFLIGHT). */
  maxInflight?: number
  /** Input bytes this lease may hold (default: its pipeline bound × LEASE_STREAM_MAX_TASK_BYTES). */
  maxBytes?: number
  /** Input bytes held per peer across its lease streams (one per provider host). */
  budget?: LeaseInputBudget
  /** Counts the results of tasks that ran being written (a draining node waits for them to go out). */
  answers?: { writing: number }
}

/**
 * Task input bytes each peer's lease streams hold at a provider (read, not yet answered). A stream
 * whose peer is at the budget reads nothing more until one of the peer's tasks returns.
 */
export class LeaseInputBudget {
  private readonly held = new Map<string, number>()
  private readonly waiters = new Map<string, Set<() => void>>()
  constructor (readonly perPeer = LEASE_STREAM_PEER_BYTES) {}

  of (peer: string): number { return this.held.get(peer) ?? 0 }
  full (peer: string): boolean { return this.of(peer) >= this.perPeer }
  add (peer: string, bytes: number): void { this.held.set(peer, this.of(peer) + bytes) }

  release (peer: string, bytes: number): void {
    const left = this.of(peer) - bytes
    if (left > 0) this.held.set(peer, left)
    else this.held.delete(peer)
    const w = this.waiters.get(peer)
    this.waiters.delete(peer)
    for (const wake of w ?? []) wake()
  }

  /** Calls `wake` once at the peer's next release. */
  onRelease (peer: string, wake: () => void): void {
    let w = this.waiters.get(peer)
    if (w === undefined) { w = new Set(); this.waiters.set(peer, w) }
    w.add(wake)
  }
}

/**
 * Provider side: serves the tasks a lease holder sends on its lease stream until the holder
 * closes its end (resolves) or breaks a rule (throws the WireError, which the caller charges).
 * Tasks still running when it returns are cancelled.
 */
export async function serveLeaseTasks (s: LeaseTaskServer): Promise<void> {
  const slots = Math.max(1, Math.floor(s.slots ?? LEASE_STREAM_DEFAULT_SLOTS))
  // the queue comes on top of the clamp, so a lease of up to 64 slots still reads a cancel while it
  // holds all the copies a submitter reads ahead (review s8: slots + 7 clamped to 64 read none from 58 slots)
  const max = Math.min(s.maxInflight ?? LEASE_STREAM_MAX_INFLIGHT, slots) + LEASE_STREAM_QUEUED
  const maxBytes = s.maxBytes ?? max * LEASE_STREAM_MAX_TASK_BYTES
  const peer = toHex(s.sender)
  const leaseHex = toHex(s.leaseId)
  const writer = s.writer ?? new CoalescingWriter(s.framed, { drainTimeoutMs: s.writeTimeoutMs })
  /** Tasks running (cancellable by id); an id leaves as soon as its task returns. */
  const running = new Map<string, AbortController>()
  // results written at once share one receipt signature when the holder checks batches (receipt-batcher.ts)
  const signReceipts = s.provider.signReceipts
  const batcher = signReceipts === undefined ? undefined : new ReceiptBatcher(r => signReceipts(r), writer.lingerMs)
  /** Tasks running or holding an unwritten result (the pipeline bound), and the input bytes held. */
  let inflight = 0
  let heldBytes = 0
  let room: (() => void) | undefined
  const wake = (): void => { const r = room; room = undefined; r?.() }
  // runs one task; only its ids outlive runTask: the input is dropped as soon as the task returns
  const execute = async (msg: { task: dbc.task.v1.ITask | null }, id: string, ac: AbortController, bytes: number): Promise<dbc.task.v1.ITaskResult | WireError> => {
    const task = msg.task as dbc.task.v1.ITask
    msg.task = null
    try {
      const unsignedReceipt = batcher !== undefined && task.batchReceipts === true
      return withOwnCode(await s.provider.runTask(task, s.sender, { signal: ac.signal, charge: s.charge, ...(unsignedReceipt ? { unsignedReceipt } : {}) }))
    } catch (err) {
      // a task under no lease of ours is a protocol violation: the stream ends, the caller charges it
      if (err instanceof WireError) return err
      const e = err as DbcError
      const code = e.code ?? 'TASK_FAILED'
      return { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: false, code, error: `${code}: ${e.message}` }
    } finally {
      // the id is free again before the result goes out (a resend after CODE_MISSING is no duplicate)
      if (running.get(id) === ac) running.delete(id)
      heldBytes -= bytes
      s.budget?.release(peer, bytes)
      wake()
    }
  }
  const runOne = async (msg: { task: dbc.task.v1.ITask | null }, id: string, ac: AbortController, bytes: number): Promise<void> => {
    const result = await execute(msg, id, ac, bytes)
    if (result instanceof WireError) { s.framed.fail(result); return }
    if (ac.signal.aborted) return // cancelled by the holder, or the stream ended: no answer is awaited
    // counted from the task's return (the same turn its slot was freed) until written
    if (s.answers !== undefined) s.answers.writing++
    try { await answer(result, running.size > 0) } finally { if (s.answers !== undefined) s.answers.writing-- }
  }
  // linger: more of the lease's tasks run or wait for a slot, so more results follow soon (one write for them)
  const answer = async (result: dbc.task.v1.ITaskResult, linger = false): Promise<void> => {
    // signed with the results of the same write (the batcher waits as the writer would; the writer then sends next turn)
    if (batcher !== undefined && awaitsBatchSignature(result)) {
      try { result = await batcher.signed(result, linger) } catch (err) { s.framed.abort(new Error(`receipt signing failed: ${(err as Error).message}`)); return }
      linger = false
    }
    await send(result, linger)
  }
  /** A TaskBundle's results: their receipts under one signature, written in one turn (one write). */
  const answerAll = async (results: dbc.task.v1.ITaskResult[]): Promise<void> => {
    const unsigned = batcher === undefined ? [] : results.filter(awaitsBatchSignature)
    if (unsigned.length > 0) {
      let signed: dbc.task.v1.ITaskResult[]
      try { signed = await batcher!.signedGroup(unsigned) } catch (err) { s.framed.abort(new Error(`receipt signing failed: ${(err as Error).message}`)); return }
      results = results.map(r => awaitsBatchSignature(r) ? signed.shift()! : r)
    }
    await Promise.all(results.map(async r => await send(r, false)))
  }
  const send = async (result: dbc.task.v1.ITaskResult, linger: boolean): Promise<void> => {
    let out = TaskMessage.encode({ result }).finish()
    // on a relayed connection a result past the relay's byte limit would be cut mid-frame: refused typed
    const left = limitBytesLeft(s.connection)
    if (left !== undefined && wireBytes(out.length) > left) {
      const error = `ROUTE_LIMIT: a result of ${out.length} bytes does not fit the ${left} bytes the relay still allows on this connection`
      out = TaskMessage.encode({ result: { taskId: result.taskId, jobId: result.jobId, attempt: result.attempt, ok: false, code: 'ROUTE_LIMIT', error } }).finish()
    }
    try {
      // no timer per result: the writer fails every waiting write once the holder reads nothing for the write timeout
      await writer.write(out, { linger })
    } catch (err) {
      s.framed.abort(new Error(`the lease holder did not read its results: ${(err as Error).message}`))
    }
  }
  // one task of a bundle run through runTask (a provider without runBundle: test doubles)
  const runAlone = async (task: dbc.task.v1.ITask, signal: AbortSignal, unsignedReceipt: boolean): Promise<dbc.task.v1.ITaskResult | WireError> => {
    try {
      return withOwnCode(await s.provider.runTask(task, s.sender, { signal, charge: s.charge, ...(unsignedReceipt ? { unsignedReceipt } : {}) }))
    } catch (err) {
      if (err instanceof WireError) return err
      return failed(task, err as DbcError)
    }
  }
  // a TaskBundle: ONE unit of the pipeline bound and one slot at the provider; its tasks run one
  // after another, each answered by its own result, all written together when the bundle ends
  const runBundle = async (run: Array<{ task: dbc.task.v1.ITask, id: string, ac: AbortController }>, early: dbc.task.v1.ITaskResult[], bytes: number): Promise<void> => {
    const unsignedReceipt = batcher !== undefined && run.every(r => r.task.batchReceipts === true)
    let results: Array<dbc.task.v1.ITaskResult | WireError> = []
    try {
      if (run.length === 0) { /* every task a duplicate: only their answers */ } else if (s.provider.runBundle !== undefined) {
        try {
          const rs = await s.provider.runBundle(run.map(r => r.task), s.sender, { signals: run.map(r => r.ac.signal), charge: s.charge, ...(unsignedReceipt ? { unsignedReceipt } : {}) })
          results = run.map((r, i) => rs[i] !== undefined ? withOwnCode(rs[i]) : failed(r.task, new DbcError('TASK_FAILED', 'the provider gave no result for it')))
        } catch (err) {
          results = err instanceof WireError ? [err] : run.map(r => failed(r.task, err as DbcError))
        }
      } else {
        for (const r of run) {
          // a task cancelled before it started is skipped (no result, as for a task alone)
          if (r.ac.signal.aborted) { results.push(failed(r.task, new DbcError('TASK_CANCELLED', 'cancelled before it started'))); continue }
          results.push(await runAlone(r.task, r.ac.signal, unsignedReceipt))
        }
      }
    } finally {
      // the ids are free again before the results go out; the inputs are dropped
      for (const r of run) { r.task = {}; if (running.get(r.id) === r.ac) running.delete(r.id) }
      heldBytes -= bytes
      s.budget?.release(peer, bytes)
      wake()
    }
    const violation = results.find(r => r instanceof WireError)
    if (violation !== undefined) { s.framed.fail(violation); return }
    // cancelled by the holder, or the stream ended: no answer is awaited
    const out = [...early, ...(results as dbc.task.v1.ITaskResult[]).filter((_, i) => !run[i].ac.signal.aborted)]
    if (out.length === 0) return
    if (s.answers !== undefined) s.answers.writing += out.length
    try { await answerAll(out) } finally { if (s.answers !== undefined) s.answers.writing -= out.length }
  }
  const settle = (p: Promise<void>): void => { void p.finally(() => { inflight--; wake() }) }
  try {
    for (;;) {
      // a full pipeline, lease or peer budget reads nothing more: the holder's frames wait in the stream's bounded buffers
      while (inflight >= max || heldBytes >= maxBytes || s.budget?.full(peer) === true) {
        await new Promise<void>(resolve => { room = resolve; s.budget?.onRelease(peer, resolve) })
      }
      const f = await s.framed.read()
      if (f === undefined) return
      const m = decodeMessage(TaskMessage, f)
      if (!m.ok) throw m.error
      const msg = m.value
      if (msg.task != null) {
        // a task on another lease's stream would dodge that lease's bounds (charged like a task under no lease)
        if (toHex(msg.task.leaseId ?? new Uint8Array()) !== leaseHex) throw new WireError('TASK_WRONG_LEASE', 'a task naming another lease than the stream\'s own')
        const id = toHex(msg.task.taskId ?? new Uint8Array())
        inflight++
        if (running.has(id)) {
          // an honest holder may resend an id whose answer it has not read yet: refused typed, the lease lives
          settle(answer(duplicate(msg.task)))
          continue
        }
        const ac = new AbortController()
        running.set(id, ac)
        heldBytes += f.length
        s.budget?.add(peer, f.length)
        settle(runOne(msg, id, ac, f.length))
      } else if (msg.bundle != null) {
        const tasks = checkBundle(msg.bundle, s.bundleMax ?? 0, leaseHex)
        inflight++ // one unit of the pipeline bound, whatever its size
        heldBytes += f.length
        s.budget?.add(peer, f.length)
        const run: Array<{ task: dbc.task.v1.ITask, id: string, ac: AbortController }> = []
        const early: dbc.task.v1.ITaskResult[] = []
        for (const t of tasks) {
          const id = toHex(t.taskId ?? new Uint8Array())
          // a duplicate (running, or twice in the bundle) gets its own refusal; the lease lives
          if (running.has(id)) { early.push(duplicate(t)); continue }
          const ac = new AbortController()
          running.set(id, ac)
          run.push({ task: t, id, ac })
        }
        settle(runBundle(run, early, f.length))
      } else if (msg.cancelTaskId != null) {
        running.get(toHex(msg.cancelTaskId))?.abort(new Error('the submitter cancelled the task'))
      } else {
        throw new WireError('UNEXPECTED_MESSAGE', 'a lease stream carries tasks, task bundles and cancels only')
      }
    }
  } finally {
    for (const ac of running.values()) ac.abort(new Error('the lease stream ended'))
    batcher?.close()
  }
}

const duplicate = (t: dbc.task.v1.ITask): dbc.task.v1.ITaskResult => ({ taskId: t.taskId, jobId: t.jobId, attempt: t.attempt, ok: false, code: 'TASK_DUPLICATE', error: 'TASK_DUPLICATE: a task with this id is still running on this lease' })
const failed = (t: dbc.task.v1.ITask, e: DbcError): dbc.task.v1.ITaskResult => {
  const code = e.code ?? 'TASK_FAILED'
  return { taskId: t.taskId, jobId: t.jobId, attempt: t.attempt, ok: false, code, error: `${code}: ${e.message}` }
}

/**
 * A TaskBundle's tasks, or the WireError (charged, the stream ends) for one no honest holder sends:
 * on a lease whose offer runs none (bundle_max < 2), empty or past the offer's bundle_max, a task
 * naming another lease, or tasks of different executors, code or entries.
 */
export function checkBundle (bundle: dbc.task.v1.ITaskBundle, bundleMax: number, leaseHex: string): dbc.task.v1.ITask[] {
  const tasks = bundle.tasks ?? []
  if (bundleMax < 2) throw new WireError('BUNDLE_NOT_OFFERED', 'a task bundle on a lease whose offer runs none (bundle_max)')
  if (tasks.length === 0 || tasks.length > Math.min(bundleMax, TASK_BUNDLE_MAX)) throw new WireError('BUNDLE_TOO_LARGE', `a task bundle of ${tasks.length} tasks (this lease's offer runs 1 to ${Math.min(bundleMax, TASK_BUNDLE_MAX)})`)
  const first = tasks[0]
  const same = (a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean => toHex(a ?? new Uint8Array()) === toHex(b ?? new Uint8Array())
  for (const t of tasks) {
    if (toHex(t.leaseId ?? new Uint8Array()) !== leaseHex) throw new WireError('TASK_WRONG_LEASE', 'a task naming another lease than the stream\'s own')
    if ((t.executor ?? '') !== (first.executor ?? '') || (t.entry ?? '') !== (first.entry ?? '') || !same(t.codeHash, first.codeHash)) throw new WireError('BUNDLE_MIXED', 'a task bundle whose tasks name different executors, code or entries')
  }
  return tasks
}

// The submitter's side of a lease stream (LeaseTaskChannel) is in lease-task-channel.ts.
export { LeaseTaskChannel, trustedResult } from './lease-task-channel.js'
