// Tasks on a lease's own stream (/dbc/task/1.0.0): once a provider accepted a lease (its first
// heartbeat), the holder sends many Task frames on that stream and the provider answers each with
// a TaskResult tagged by task id, pipelined, between its heartbeats; a cancel_task_id stops one.
// One stream per lease instead of one per task: no stream open, multistream-select or peer-store
// touch per task (a third of the submitter's CPU when each task had its own stream).
//
// Hostile-input rules: the provider runs at most LEASE_STREAM_MAX_INFLIGHT of a stream's tasks at
// once (its slot manager and payment gate bound them further) and reads no further frame while
// that many are running or waiting to write their result, so a holder that never reads its results
// grows nothing here: its frames wait in the stream's bounded buffers (the guard's budgets), and a
// result unread for the write timeout ends the lease. A broken stream is a lost lease: the holder's
// copies in flight on it are lost (the runner's lost-copy path), never failed.
import type { Connection } from '@libp2p/interface'
import { FramedStream } from './framed.js'
import { decodeMessage } from '../wire/decode.js'
import { dbc } from '../wire/gen/wire.js'
import { WireError, DbcError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import { resultCode, withOwnCode, type ChargedError, type LocalProvider } from '../core/scheduler/ports.js'
import { limitBytesLeft, wireBytes } from './routes/index.js'

const TaskMessage = dbc.task.v1.TaskMessage

/** Most tasks of one lease stream a provider runs or answers at once; more wait unread. */
export const LEASE_STREAM_MAX_INFLIGHT = 64
/** Larger task frames go on a stream of their own (a big input gains nothing from the pipeline, and a refusal of it stays one task's). */
export const LEASE_STREAM_MAX_TASK_BYTES = 256 * 1024

export interface LeaseTaskServer {
  framed: FramedStream
  connection: Pick<Connection, 'limits'>
  sender: Uint8Array
  provider: Pick<LocalProvider, 'runTask'>
  /** Charges the sender for a task no honest submitter sends (the module rule). */
  charge: (err: ChargedError) => void
  writeOpts: () => { signal: AbortSignal }
  maxInflight?: number
}

/**
 * Provider side: serves the tasks a lease holder sends on its lease stream until the holder
 * closes its end (resolves) or breaks a rule (throws the WireError, which the caller charges).
 * Tasks still running when it returns are cancelled.
 */
export async function serveLeaseTasks (s: LeaseTaskServer): Promise<void> {
  const max = s.maxInflight ?? LEASE_STREAM_MAX_INFLIGHT
  const running = new Map<string, AbortController>()
  let room: (() => void) | undefined
  const runOne = async (task: dbc.task.v1.ITask, id: string, ac: AbortController): Promise<void> => {
    let result: dbc.task.v1.ITaskResult
    try {
      result = withOwnCode(await s.provider.runTask(task, s.sender, { signal: ac.signal, charge: s.charge }))
    } catch (err) {
      // a task under no lease of ours is a protocol violation: the stream ends, the caller charges it
      if (err instanceof WireError) { s.framed.fail(err); return }
      const e = err as DbcError
      const code = e.code ?? 'TASK_FAILED'
      result = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: false, code, error: `${code}: ${e.message}` }
    }
    if (ac.signal.aborted) return // cancelled by the holder, or the stream ended: no answer is awaited
    let out = TaskMessage.encode({ result }).finish()
    // on a relayed connection a result past the relay's byte limit would be cut mid-frame: refused typed
    const left = limitBytesLeft(s.connection)
    if (left !== undefined && wireBytes(out.length) > left) {
      const error = `ROUTE_LIMIT: a result of ${out.length} bytes does not fit the ${left} bytes the relay still allows on this connection`
      out = TaskMessage.encode({ result: { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: false, code: 'ROUTE_LIMIT', error } }).finish()
    }
    try {
      await s.framed.write(out, s.writeOpts())
    } catch (err) {
      s.framed.abort(new Error(`the lease holder did not read its results: ${(err as Error).message}`))
    }
  }
  try {
    for (;;) {
      // a full pipeline reads nothing more: the holder's frames wait in the stream's bounded buffers
      while (running.size >= max) await new Promise<void>(resolve => { room = resolve })
      const f = await s.framed.read()
      if (f === undefined) return
      const m = decodeMessage(TaskMessage, f)
      if (!m.ok) throw m.error
      const msg = m.value
      if (msg.task != null) {
        const id = toHex(msg.task.taskId ?? new Uint8Array())
        if (running.has(id)) throw new WireError('UNEXPECTED_MESSAGE', 'a task id already running on this lease stream')
        const ac = new AbortController()
        running.set(id, ac)
        // the task holds its place until its result is written (results unread count against the pipeline)
        void runOne(msg.task, id, ac).finally(() => { running.delete(id); const r = room; room = undefined; r?.() })
      } else if (msg.cancelTaskId != null) {
        running.get(toHex(msg.cancelTaskId))?.abort(new Error('the submitter cancelled the task'))
      } else {
        throw new WireError('UNEXPECTED_MESSAGE', 'a lease stream carries tasks and cancels only')
      }
    }
  } finally {
    for (const ac of running.values()) ac.abort(new Error('the lease stream ended'))
  }
}

/**
 * Submitter side of one lease stream: reads heartbeats and results until the stream ends, sends
 * tasks and cancels. A copy in flight when the stream ends is lost (a plain Error, not a typed
 * failure: the runner counts it as unreachable and sends it again elsewhere).
 */
export class LeaseTaskChannel {
  private readonly pending = new Map<string, (r: dbc.task.v1.ITaskResult | Error) => void>()
  private ended: Error | undefined

  constructor (readonly framed: FramedStream, private readonly onHeartbeat: () => void) {}

  get open (): boolean { return this.ended === undefined }

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
        // a result for no copy in flight (one cancelled meanwhile) is dropped
        if (r != null) { this.pending.get(toHex(r.taskId ?? new Uint8Array()))?.(r); continue }
        why = new Error('the provider ended the lease stream with a refusal or an unexpected message')
        this.framed.abort(why)
        break
      }
    } catch (err) {
      why = new Error(`the lease stream broke: ${(err as Error).message}`)
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
        if (this.pending.delete(id)) void this.framed.write(TaskMessage.encode({ cancelTaskId: task.taskId }).finish()).catch(() => {})
        reject(signal?.reason ?? new Error('aborted'))
      }
      this.pending.set(id, (r) => {
        this.pending.delete(id)
        signal?.removeEventListener('abort', onAbort)
        if (r instanceof Error) reject(r)
        else resolve(r)
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      this.framed.write(bytes, signal !== undefined ? { signal } : {}).catch((err: Error) => {
        // not written: the copy never reached the provider (lost, unless aborted by the caller)
        if (!this.pending.has(id)) return
        this.pending.get(id)?.(new Error(`the task did not go out on the lease stream: ${err.message}`))
      })
    })
  }

  close (): Promise<void> { return this.framed.close().catch(() => {}) }
}

/** The code of a result that came back, as the submitter may trust it. */
export function trustedResult (r: dbc.task.v1.ITaskResult): dbc.task.v1.ITaskResult {
  if (r.ok !== true) r.code = resultCode(r) ?? 'TASK_FAILED'
  return r
}
