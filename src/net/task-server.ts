// /dbc/task/1.0.0, provider side: lease requests, leases (a long-lived stream per lease that
// carries heartbeats and, pipelined, the lease's tasks and results: task-lease-stream.ts), single
// tasks on a stream of their own, and vouchers. Every frame is hostile input: limits per lease
// (taskFrameCap), typed refusals, charged violations (src/net/guard).
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { encodeFrame } from '../wire/frame.js'
import { decodeMessage } from '../wire/decode.js'
import { dbc } from '../wire/gen/wire.js'
import { WireError, DbcError } from '../errors.js'
import type { Host } from './host.js'
import { withOwnCode, type ChargedError, type LocalProvider } from '../core/scheduler/ports.js'
import { CoalescingWriter } from './lease-writer.js'
import { LEASE_STREAM_MAX_TASK_BYTES, LeaseInputBudget, serveLeaseTasks } from './task-lease-stream.js'
import { guardedHandle } from './guard/index.js'
import { RouteLimitError, limitBytesLeft, wireBytes } from './routes/index.js'
import { TASK_MAX_FRAME, TASK_PROTOCOL, TASK_REQUEST_MAX_FRAME, TASK_WRITE_TIMEOUT_MS, taskFrameCap } from './task-protocol.js'

const log = logger('dbc:task')
const TaskMessage = dbc.task.v1.TaskMessage
/** Provider side of a voucher: keeps it when it verifies, returns the voucher held for the job (src/jobs/payment-gate.ts). */
export type VoucherTaker = (voucher: dbc.task.v1.IVoucher, sender: Uint8Array) => Promise<dbc.task.v1.IVoucher>

export interface TaskServerInit {
  heartbeatMs?: number
  /** How long a write to a peer that does not read may wait (default TASK_WRITE_TIMEOUT_MS). */
  writeTimeoutMs?: number
  onBadInput?: (peer: PeerId, err: WireError) => void
  maxInboundStreams?: number
  /** Counts the results of tasks being written, on every stream (a draining node waits for them to go out). */
  answers?: { writing: number }
}

/**
 * Provider side: serves lease requests, leases and tasks for `provider`. Large frames (task
 * inputs) only from peers holding a lease here, up to what their lease request announced
 * (`provider.leasedInputBytes`); a provider without that hook keeps TASK_MAX_FRAME for all.
 */
export async function registerTaskProtocol (host: Host, provider: LocalProvider & { hasCode?: (h: Uint8Array) => boolean, acceptVoucher?: VoucherTaker, leaseSlotCount?: (leaseId: Uint8Array) => number | undefined, leaseBundleMax?: (leaseId: Uint8Array) => number | undefined }, init: TaskServerInit = {}): Promise<void> {
  const heartbeatMs = init.heartbeatMs ?? 1000
  // task inputs each peer's lease streams hold here, across its leases (task-lease-stream.ts)
  const budget = new LeaseInputBudget()
  await guardedHandle(host, TASK_PROTOCOL, async (stream: Stream, connection: Connection, g) => {
    const sender = connection.remotePeer.toMultihash().bytes
    const leased = provider.leasedInputBytes?.bind(provider)
    // once a lease stream is open its frames are small tasks only (larger ones go on a stream each)
    let leaseStream = false
    /** Set while this stream's task result is written (init.answers). */
    let answering: { writing: number } | undefined
    const framed = g.open({
      maxFrameBytes: () => {
        const bytes = leased === undefined ? TASK_MAX_FRAME : leased(sender)
        const cap = bytes === undefined ? TASK_REQUEST_MAX_FRAME : leased === undefined ? bytes : taskFrameCap(bytes)
        return leaseStream ? Math.min(cap, LEASE_STREAM_MAX_TASK_BYTES) : cap
      }
    })
    const writeOpts = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(init.writeTimeoutMs ?? TASK_WRITE_TIMEOUT_MS) })
    const charge = (err: ChargedError): void => { init.onBadInput?.(connection.remotePeer, err instanceof WireError ? err : new WireError(err.code, err.message)) }
    try {
      const frame = await framed.readRequired({ signal: AbortSignal.timeout(30_000) })
      const m = decodeMessage(TaskMessage, frame)
      if (!m.ok) throw m.error
      const msg = m.value
      if (msg.leaseRequest != null) {
        const offer = await provider.offer(msg.leaseRequest, sender)
        await framed.write(TaskMessage.encode({ offer }).finish(), writeOpts())
        await framed.close(writeOpts())
      } else if (msg.lease != null) {
        const lease = msg.lease
        leaseStream = true
        await provider.openLease(lease, sender)
        let timer: ReturnType<typeof setInterval> | undefined
        // heartbeats and results share one writer: what is written in one turn leaves as one write
        const writer = new CoalescingWriter(framed, { drainTimeoutMs: init.writeTimeoutMs ?? TASK_WRITE_TIMEOUT_MS })
        try {
          // first heartbeat acknowledges the lease; then one per interval until either side closes
          const beat = async (): Promise<void> => {
            await writer.write(TaskMessage.encode({ heartbeat: { leaseId: lease.leaseId, at: Date.now() } }).finish(), writeOpts())
          }
          await beat()
          // beat as often as the holder asked (bounded), so its lease timeout means what it says; a
          // holder that does not read gets no new beat while one waits (its buffer holds one), and a
          // beat unread for TASK_WRITE_TIMEOUT_MS ends the lease
          const every = Math.min(5000, Math.max(100, (lease.heartbeatMs ?? 0) > 0 ? (lease.heartbeatMs ?? heartbeatMs) : heartbeatMs))
          let waiting = false
          timer = setInterval(() => {
            if (waiting) return
            waiting = true
            beat().then(() => { waiting = false }, (err: Error) => {
              clearInterval(timer)
              framed.abort(new Error(`the lease holder did not read its heartbeats: ${err.message}`))
            })
          }, every)
          // the holder's tasks on this stream (pipelined, results tagged by task id) until it closes its end
          const leaseId = lease.leaseId ?? new Uint8Array()
          await serveLeaseTasks({ framed, writer, connection, sender, provider, leaseId, slots: provider.leaseSlotCount?.(leaseId), bundleMax: provider.leaseBundleMax?.(leaseId), budget, charge, writeTimeoutMs: init.writeTimeoutMs ?? TASK_WRITE_TIMEOUT_MS, answers: init.answers })
        } finally {
          clearInterval(timer)
          provider.closeLease?.(lease.leaseId ?? new Uint8Array())
        }
        await writer.close(writeOpts()).catch(() => {})
      } else if (msg.task != null) {
        const ac = new AbortController()
        stream.addEventListener('close', () => { ac.abort(new Error('the submitter closed the task stream')) })
        let result: dbc.task.v1.ITaskResult
        try {
          // charge: a module refused at validation that our own submitter would not have sent
          result = withOwnCode(await provider.runTask(msg.task, sender, { signal: ac.signal, charge }))
        } catch (err) {
          // a protocol violation (a task under no lease of ours) is charged below, not answered
          if (err instanceof WireError) throw err
          const e = err as DbcError
          const code = e.code ?? 'TASK_FAILED'
          result = { taskId: msg.task.taskId, jobId: msg.task.jobId, attempt: msg.task.attempt, ok: false, code, error: `${code}: ${e.message}` }
        }
        // counted from the task's return until written (a draining node waits for it)
        if (init.answers !== undefined) { init.answers.writing++; answering = init.answers }
        // a submitter that never reads its result holds neither the handler nor the result for long
        const out = TaskMessage.encode({ result }).finish()
        // on a relayed connection a result past the relay's byte limit would be cut mid-frame: refuse it typed
        const left = limitBytesLeft(connection)
        if (left !== undefined && wireBytes(out.length) > left) throw new RouteLimitError(`a result of ${out.length} bytes does not fit the ${left} bytes the relay still allows on this connection`)
        await framed.write(out, writeOpts())
        await framed.close(writeOpts())
      } else if (msg.voucher != null) {
        // the payer's latest signed total: answered with the voucher now held for the job (a bad
        // one throws a WireError: charged below; a stale one is answered with the newer held one)
        if (provider.acceptVoucher === undefined) throw new DbcError('PAYMENT_OFF', 'this provider takes no vouchers')
        const held = await provider.acceptVoucher(msg.voucher, sender)
        await framed.write(TaskMessage.encode({ voucher: held }).finish(), writeOpts())
        await framed.close(writeOpts())
      } else {
        throw new WireError('UNEXPECTED_MESSAGE', 'the task protocol expects a lease request, a lease, a task or a voucher')
      }
    } catch (caught) {
      let err = caught
      // a lease holder's task above its lease's frame limit: the job's own limits disagree with
      // ours (an honest one may announce less than it sends): refused with the reason, not charged
      if (err instanceof WireError && err.code === 'FRAME_TOO_LARGE' && leased?.(sender) !== undefined) {
        err = new TaskTooLargeError(err.message)
      }
      if (err instanceof WireError) init.onBadInput?.(connection.remotePeer, err)
      // typed refusals go back, charged or not (a lease on an expired offer: ask for a new one)
      if (err instanceof DbcError) {
        try { stream.send(encodeFrame(dbc.common.v1.ProtocolError.encode({ code: err.code, message: err.message }).finish())) } catch {}
      }
      log('task stream from %p failed: %s', connection.remotePeer, (err as Error).message)
      framed.abort(err as Error)
    }
    if (answering !== undefined) answering.writing--
    // a provider behind NAT is reached through a relay: its task streams run on the limited
    // connection (within the relay's limits) when DCUtR could not upgrade it
  }, { maxInboundStreams: init.maxInboundStreams ?? 1024, expectsRequest: true, runOnLimitedConnection: true })
}

/** A lease holder's task frame above what its lease request announced (refused, not charged). */
export class TaskTooLargeError extends DbcError {
  override name = 'TaskTooLargeError'
  constructor (detail: string) {
    super('TASK_TOO_LARGE', `task refused: ${detail} (the lease request announced smaller inputs)`, { hint: 'announce the job\'s largest task input in the lease request (max_input_bytes), or split the input' })
  }
}
