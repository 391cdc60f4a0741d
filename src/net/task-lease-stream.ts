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
import { LEASE_TASKS_AHEAD, withOwnCode, type ChargedError, type LocalProvider } from '../core/scheduler/ports.js'
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
  provider: Pick<LocalProvider, 'runTask' | 'signReceipts'>
  /** The stream's own lease: a task naming another one is a violation (charged). */
  leaseId: Uint8Array
  /** The lease's task slots (its offer's); LEASE_STREAM_DEFAULT_SLOTS when unknown. */
  slots?: number
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
          const t = msg.task
          settle(answer({ taskId: t.taskId, jobId: t.jobId, attempt: t.attempt, ok: false, code: 'TASK_DUPLICATE', error: 'TASK_DUPLICATE: a task with this id is still running on this lease' }))
          continue
        }
        const ac = new AbortController()
        running.set(id, ac)
        heldBytes += f.length
        s.budget?.add(peer, f.length)
        settle(runOne(msg, id, ac, f.length))
      } else if (msg.cancelTaskId != null) {
        running.get(toHex(msg.cancelTaskId))?.abort(new Error('the submitter cancelled the task'))
      } else {
        throw new WireError('UNEXPECTED_MESSAGE', 'a lease stream carries tasks and cancels only')
      }
    }
  } finally {
    for (const ac of running.values()) ac.abort(new Error('the lease stream ended'))
    batcher?.close()
  }
}

// The submitter's side of a lease stream (LeaseTaskChannel) is in lease-task-channel.ts.
export { LeaseTaskChannel, trustedResult } from './lease-task-channel.js'
