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
import { LEASE_TASKS_AHEAD, resultCode, withOwnCode, type ChargedError, type LocalProvider } from '../core/scheduler/ports.js'
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

/**
 * Submitter side of one lease stream: reads heartbeats and results until the stream ends, sends
 * tasks and cancels. A copy in flight when the stream ends is lost (a plain Error, not a typed
 * failure: the runner counts it as unreachable and sends it again elsewhere).
 */
export class LeaseTaskChannel {
  private readonly pending = new Map<string, (r: dbc.task.v1.ITaskResult | Error) => void>()
  /** Copies cancelled lately (id → when): their result may still come, and is dropped uncounted. */
  private readonly cancelled = new Map<string, number>()
  private ended: Error | undefined
  /** Results for no copy in flight nor cancelled lately (a provider sending them is ended at LEASE_STREAM_MAX_UNKNOWN_RESULTS). */
  unknownResults = 0
  /** Tasks and cancels written in one turn leave as one stream write. */
  readonly writer: CoalescingWriter

  constructor (readonly framed: FramedStream, private readonly onHeartbeat: () => void) {
    this.writer = new CoalescingWriter(framed)
  }

  get open (): boolean { return this.ended === undefined }

  /**
   * The largest frame the provider may send now: a heartbeat's while no copy is in flight or
   * cancelled lately, else a result up to `resultCap` (the task protocol's frame limit).
   */
  frameLimit (resultCap: number): number {
    this.expireCancels()
    return this.pending.size > 0 || this.cancelled.size > 0 ? resultCap : LEASE_STREAM_IDLE_FRAME
  }

  private expireCancels (now = Date.now()): void {
    for (const [id, at] of this.cancelled) {
      if (at + LEASE_STREAM_CANCEL_GRACE_MS > now && this.cancelled.size <= LEASE_STREAM_MAX_CANCELLED) break
      this.cancelled.delete(id)
    }
  }

  /** Reads the provider's frames until the stream ends; then every copy in flight is lost. */
  async pump (): Promise<void> {
    let why = new Error('the lease stream ended')
    try {
      for (;;) {
        const f = await this.framed.read()
        if (f === undefined) break
        const m = decodeMessage(TaskMessage, f)
        if (!m.ok) { why = new Error(`the provider sent an unreadable frame on the lease stream: ${m.error.message}`); this.framed.abort(why); break }
        if (m.value.heartbeat != null) { this.onHeartbeat(); continue }
        const r = m.value.result
        if (r != null) {
          const id = toHex(r.taskId ?? new Uint8Array())
          const waiting = this.pending.get(id)
          if (waiting !== undefined) { waiting(r); continue }
          // a result for a copy cancelled meanwhile is dropped; one for no copy at all is counted
          if (this.cancelled.delete(id)) continue
          if (++this.unknownResults < LEASE_STREAM_MAX_UNKNOWN_RESULTS) continue
          why = new Error(`the provider sent ${this.unknownResults} results for tasks not in flight on the lease stream`)
          this.framed.abort(why)
          break
        }
        why = new Error('the provider ended the lease stream with a refusal or an unexpected message')
        this.framed.abort(why)
        break
      }
    } catch (err) {
      why = new Error(`the lease stream broke: ${(err as Error).message}`)
      // a frame past the limit (or any read error) leaves the stream open underneath: end it
      this.framed.abort(why)
    }
    this.ended = why
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const w of waiting) w(why)
  }

  /** Sends one task (already encoded as a TaskMessage) and waits for its result. */
  async run (task: dbc.task.v1.ITask, bytes: Uint8Array, signal?: AbortSignal): Promise<dbc.task.v1.ITaskResult> {
    if (this.ended !== undefined) throw new DbcError('LEASE_LOST', `the lease stream is closed (${this.ended.message}); the task runs under another lease`)
    signal?.throwIfAborted()
    const id = toHex(task.taskId ?? new Uint8Array())
    if (this.pending.has(id)) throw new DbcError('TASK_DUPLICATE', 'this copy is already in flight on the lease')
    return await new Promise<dbc.task.v1.ITaskResult>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.pending.delete(id)) {
          this.cancelled.set(id, Date.now())
          this.expireCancels()
          if (this.pending.size === 0 && this.framed.midFrame) {
            // a frame is arriving and no copy is in flight: it is a cancelled copy's result (dropped
            // unread anyway) or nothing we asked for; the stream ends, releasing what it holds
            const why = new Error('a copy was cancelled while a frame was arriving and no other copy is in flight on the lease')
            this.framed.fail(why)
          } else {
            void this.writer.write(TaskMessage.encode({ cancelTaskId: task.taskId }).finish()).catch(() => {})
          }
        }
        reject(signal?.reason ?? new Error('aborted'))
      }
      this.pending.set(id, (r) => {
        this.pending.delete(id)
        signal?.removeEventListener('abort', onAbort)
        if (r instanceof Error) reject(r)
        else resolve(r)
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      this.writer.write(bytes, signal !== undefined ? { signal } : {}).catch((err: Error) => {
        // not written: the copy never reached the provider (lost, unless aborted by the caller)
        if (!this.pending.has(id)) return
        this.pending.get(id)?.(new Error(`the task did not go out on the lease stream: ${err.message}`))
      })
    })
  }

  /**
   * Closes the lease: sends what is queued and closes our end; the provider then closes its own.
   * A frame in arrival ends the stream at once, and a stream still open
   * LEASE_STREAM_CLOSE_GRACE_MS later (a provider that never closes) is reset, so nothing it holds
   * outlives the lease.
   */
  async close (): Promise<void> {
    const stream = this.framed.stream
    // a frame in arrival on a closed lease is nobody's result any more: the stream ends now
    if (this.framed.midFrame) { this.framed.fail(new Error('the lease was closed while a frame was arriving')); return }
    const timer = setTimeout(() => { if (stream.status === 'open' || stream.status === 'closing') this.framed.fail(new Error('the provider did not close the lease stream after the lease was closed')) }, LEASE_STREAM_CLOSE_GRACE_MS)
    timer.unref?.()
    stream.addEventListener('close', () => { clearTimeout(timer) }, { once: true })
    await this.writer.close({ signal: AbortSignal.timeout(LEASE_STREAM_CLOSE_GRACE_MS) }).catch(() => {})
  }
}

/** The code of a result that came back, as the submitter may trust it. */
export function trustedResult (r: dbc.task.v1.ITaskResult): dbc.task.v1.ITaskResult {
  if (r.ok !== true) r.code = resultCode(r) ?? 'TASK_FAILED'
  return r
}
