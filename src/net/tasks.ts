// /dbc/task/1.0.0: grid-job messages between a submitter and providers over libp2p.
//
// One request per stream (lease request → offer, task → result, voucher → the voucher the
// provider now holds for the job, or a typed refusal); a lease has its own long-lived stream on
// which the provider sends heartbeats until the lease closes or a side dies, and which carries
// the lease's tasks and their results, pipelined and tagged by task id (task-lease-stream.ts; a
// large task, or one over a relay's limited connection, still goes on a stream of its own). The stream runs end to end between the two peers inside the
// Noise session, so task inputs and results are encrypted between submitter and provider;
// relayed (multi-path) copies use sealed envelopes instead (src/crypto/envelope.ts).
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { sha256 } from '@noble/hashes/sha2.js'
import { FramedStream } from './framed.js'
import { encodeFrame } from '../wire/frame.js'
import { decodeMessage } from '../wire/decode.js'
import { dbc } from '../wire/gen/wire.js'
import { WireError, DbcError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import type { Host } from './host.js'
import { NO_ANSWER_CODES, offerView, resultCode, withOwnCode, type ChargedError, type JobTransport, type LocalProvider, type TransportOffer } from '../core/scheduler/ports.js'
import { LEASE_STREAM_MAX_TASK_BYTES, LeaseInputBudget, LeaseTaskChannel, serveLeaseTasks, trustedResult } from './task-lease-stream.js'
import { guardedHandle, SMALL_FRAME_BYTES } from './guard/index.js'
import { DEFAULT_MODULE_LIMITS } from '../core/compute/wasm-validate.js'
import { RouteBook, RouteLimitError, RouteLostError, limitBytesLeft, wireBytes } from './routes/index.js'
import { routeCost } from '../core/scheduler/route-cost.js'
import { isRefusalCode } from '../core/scheduler/lease-search.js'

export const TASK_PROTOCOL = '/dbc/task/1.0.0'
/** Task inputs travel inline: allow up to 16 MiB per frame on this protocol. */
export const TASK_MAX_FRAME = 16 * 1024 * 1024
/** What a peer without a lease may send: a lease request or a lease (a few hundred bytes). */
export const TASK_REQUEST_MAX_FRAME = SMALL_FRAME_BYTES
/** Room for the module sent inline with a lease's first task: the largest module providers validate (8 MiB). */
export const TASK_CODE_ALLOWANCE = DEFAULT_MODULE_LIMITS.maxModuleBytes
/** A provider's writes to a peer (offers, heartbeats, results, closes) wait this long for it to read. */
export const TASK_WRITE_TIMEOUT_MS = 30_000

/**
 * The largest task frame a lease holder may send: its lease request announced `inputBytes`, the
 * job's largest task input, so twice that (slack for encodings), plus the module and the task's
 * other fields; never above TASK_MAX_FRAME.
 */
export function taskFrameCap (inputBytes: number): number {
  return Math.min(TASK_MAX_FRAME, TASK_CODE_ALLOWANCE + 2 * Math.max(0, inputBytes) + TASK_REQUEST_MAX_FRAME)
}
const log = logger('dbc:task')
/** Provider side of a voucher: keeps it when it verifies, returns the voucher held for the job (src/jobs/payment-gate.ts). */
export type VoucherTaker = (voucher: dbc.task.v1.IVoucher, sender: Uint8Array) => Promise<dbc.task.v1.IVoucher>
const TaskMessage = dbc.task.v1.TaskMessage

export interface TaskServerInit {
  heartbeatMs?: number
  /** How long a write to a peer that does not read may wait (default TASK_WRITE_TIMEOUT_MS). */
  writeTimeoutMs?: number
  onBadInput?: (peer: PeerId, err: WireError) => void
  maxInboundStreams?: number
}

/**
 * Provider side: serves lease requests, leases and tasks for `provider`. Large frames (task
 * inputs) only from peers holding a lease here, up to what their lease request announced
 * (`provider.leasedInputBytes`); a provider without that hook keeps TASK_MAX_FRAME for all.
 */
export async function registerTaskProtocol (host: Host, provider: LocalProvider & { hasCode?: (h: Uint8Array) => boolean, acceptVoucher?: VoucherTaker, leaseSlotCount?: (leaseId: Uint8Array) => number | undefined }, init: TaskServerInit = {}): Promise<void> {
  const heartbeatMs = init.heartbeatMs ?? 1000
  // task inputs each peer's lease streams hold here, across its leases (task-lease-stream.ts)
  const budget = new LeaseInputBudget()
  await guardedHandle(host, TASK_PROTOCOL, async (stream: Stream, connection: Connection, g) => {
    const sender = connection.remotePeer.toMultihash().bytes
    const leased = provider.leasedInputBytes?.bind(provider)
    // once a lease stream is open its frames are small tasks only (larger ones go on a stream each)
    let leaseStream = false
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
        try {
          // first heartbeat acknowledges the lease; then one per interval until either side closes
          const beat = async (): Promise<void> => {
            await framed.write(TaskMessage.encode({ heartbeat: { leaseId: lease.leaseId, at: Date.now() } }).finish(), writeOpts())
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
          await serveLeaseTasks({ framed, connection, sender, provider, leaseId, slots: provider.leaseSlotCount?.(leaseId), budget, charge, writeOpts })
        } finally {
          clearInterval(timer)
          provider.closeLease?.(lease.leaseId ?? new Uint8Array())
        }
        await framed.close(writeOpts()).catch(() => {})
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

/** The typed refusal (a ProtocolError frame) a provider sent instead of an answer, if that is what `frame` is. */
function refusalIn (frame: Uint8Array): DbcError | undefined {
  try {
    const e = dbc.common.v1.ProtocolError.decode(frame)
    if (e.code === '') return undefined
    // the code and text are the provider's: a well-formed code or LEASE_REFUSED, and a bounded message
    return new DbcError(isRefusalCode(e.code) ? e.code : 'LEASE_REFUSED', e.message.slice(0, 512))
  } catch { return undefined }
}

export interface NetworkEstimate { rttMs?: number, bandwidthBytesPerSec?: number, distanceKm?: number }

export interface Libp2pJobTransportInit {
  host: Host
  /** Candidate providers for a request (capability index, gossip); default: connected peers that speak the task protocol. */
  candidates?: (req: dbc.task.v1.ILeaseRequest) => Promise<PeerId[]> | PeerId[]
  /** Predicted RTT, bandwidth and distance to a provider, for placement. */
  network?: (peer: string) => NetworkEstimate
  /** Most providers asked for offers per request. */
  maxCandidates?: number
  offerTimeoutMs?: number
  /** The route book (default: one on `host`); how long first contact through a relay waits for DCUtR. */
  routes?: RouteBook
  upgradeWaitMs?: number
}

/** Submitter side: a JobTransport over libp2p streams. Provider ids are peer id strings. */
export class Libp2pJobTransport implements JobTransport {
  private readonly host: Host
  private readonly init: Libp2pJobTransportInit
  /** The route to each provider (direct, hole-punched, relayed via which relay), for explain. */
  readonly routes: RouteBook
  /** `channel`: the lease's own stream, which carries its tasks (none over the overlay or a relay's limited connection). */
  private readonly leases = new Map<string, { provider: string, stream: { close: () => Promise<void> }, pinned?: boolean, channel?: LeaseTaskChannel }>()
  private readonly listeners = new Set<(hb: { provider: string, leaseId: Uint8Array, at: number }) => void>()

  constructor (init: Libp2pJobTransportInit) {
    this.host = init.host
    this.init = init
    this.routes = init.routes ?? new RouteBook(init.host, { upgradeWaitMs: init.upgradeWaitMs })
  }

  private async defaultCandidates (): Promise<PeerId[]> {
    // peers that announced the task protocol first; peers whose protocols we do not know yet
    // (identify still running) are asked too: a peer without the protocol refuses quickly
    const known: PeerId[] = []
    const unknown: PeerId[] = []
    for (const peer of this.host.getPeers()) {
      try {
        const p = await this.host.peerStore.get(peer)
        if (p.protocols.includes(TASK_PROTOCOL)) known.push(peer)
        else if (p.protocols.length === 0) unknown.push(peer)
      } catch {
        unknown.push(peer)
      }
    }
    return [...known, ...unknown]
  }

  private async request (peer: PeerId, msg: dbc.task.v1.ITaskMessage, signal?: AbortSignal): Promise<dbc.task.v1.TaskMessage> {
    const bytes = TaskMessage.encode(msg).finish()
    // the route book sends it over the overlay instead when it must (src/net/routes)
    return await this.routes.request(peer, TASK_PROTOCOL, msg, bytes.length, signal, async (stream) => await this.streamRequest(stream, bytes, signal))
  }

  private async streamRequest (stream: Stream, bytes: Uint8Array, signal?: AbortSignal): Promise<dbc.task.v1.TaskMessage> {
    const framed = new FramedStream(stream, { maxFrameBytes: TASK_MAX_FRAME })
    const onAbort = (): void => { framed.abort(signal?.reason ?? new Error('aborted')) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await framed.write(bytes, { signal })
      const frame = await framed.readRequired({ signal })
      const m = decodeMessage(TaskMessage, frame)
      const answered = m.ok && (m.value.offer != null || m.value.result != null || m.value.heartbeat != null || m.value.voucher != null)
      if (!answered) throw refusalIn(frame) ?? (m.ok ? new WireError('UNEXPECTED_MESSAGE', 'the provider answered with no offer or result') : m.error)
      await framed.close().catch(() => {})
      return m.value
    } catch (err) {
      framed.abort(err as Error)
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  async requestOffers (req: dbc.task.v1.ILeaseRequest, opts: { signal?: AbortSignal, exclude?: ReadonlySet<string> }): Promise<TransportOffer[]> {
    const all = await (this.init.candidates?.(req) ?? this.defaultCandidates())
    const peers = all.filter(p => opts.exclude?.has(p.toString()) !== true).slice(0, this.init.maxCandidates ?? 64)
    log('asking %d of %d candidates for offers', peers.length, all.length)
    const timeout = this.init.offerTimeoutMs ?? 5000
    const answers = await Promise.all(peers.map(async peer => {
      const signal = AbortSignal.any([AbortSignal.timeout(timeout), ...(opts.signal !== undefined ? [opts.signal] : [])])
      try {
        const reply = await this.request(peer, { leaseRequest: req }, signal)
        if (reply.offer == null) return undefined
        return { peer, offer: reply.offer }
      } catch (err) {
        log('no offer from %p: %s', peer, (err as Error).message)
        return undefined
      }
    }))
    const out: TransportOffer[] = []
    for (const a of answers) {
      if (a === undefined) continue
      const id = a.peer.toString()
      const net = this.init.network?.(id) ?? {}
      // a relayed provider pays the relay hop (src/core/scheduler/route-cost.ts)
      const route = this.routes.get(id)
      const cost = routeCost({ kind: route?.kind ?? 'direct', rttMs: net.rttMs ?? 1, bandwidthBytesPerSec: net.bandwidthBytesPerSec ?? 100e6, relayRttMs: (route?.relay ?? route?.relays?.[0]) !== undefined ? this.init.network?.((route?.relay ?? route?.relays?.[0]) as string).rttMs : undefined })
      out.push({ offer: a.offer, view: offerView(a.offer, id, { rttMs: cost.rttMs, bandwidthBytesPerSec: cost.bandwidthBytesPerSec, distanceKm: net.distanceKm }) })
    }
    return out
  }

  async openLease (provider: string, lease: dbc.task.v1.ILease, opts: { signal?: AbortSignal }): Promise<void> {
    const peer = peerIdFromString(provider)
    const key = toHex(lease.leaseId ?? new Uint8Array())
    const via = this.routes.overlayFor(provider, { lease })
    if (via !== undefined) {
      // over the overlay the provider pushes heartbeats as envelopes (src/net/overlay/task-envelopes.ts)
      const held = await via.overlay.openLease(provider, lease, { signal: AbortSignal.any([AbortSignal.timeout(30_000), ...(opts.signal !== undefined ? [opts.signal] : [])]), onHeartbeat: () => { this.emit(provider, lease.leaseId ?? new Uint8Array()) } })
      this.routes.recordOverlay(provider, held.relays, via.why)
      // a private provider with a live lease is never evicted from the private set (routes/private-peers.ts)
      this.leases.set(key, { provider, stream: held, pinned: this.routes.pin(provider) })
      this.emit(provider, lease.leaseId ?? new Uint8Array())
      return
    }
    // a lease stream carries heartbeats for the lease's life: on a relayed connection it lives as long as the relay allows
    const { stream, route } = await this.routes.open(peer, TASK_PROTOCOL, 1024, { signal: opts.signal, replyBytes: 4096 })
    // results come back on it too: up to the task protocol's frame limit while a copy is in flight, a heartbeat's otherwise
    let channel: LeaseTaskChannel | undefined
    const framed = new FramedStream(stream, { maxFrameBytes: () => channel?.frameLimit(TASK_MAX_FRAME) ?? TASK_REQUEST_MAX_FRAME })
    await framed.write(TaskMessage.encode({ lease }).finish(), opts)
    const first = await framed.readRequired({ signal: AbortSignal.any([AbortSignal.timeout(10_000), ...(opts.signal !== undefined ? [opts.signal] : [])]) })
    const m = decodeMessage(TaskMessage, first)
    if (!m.ok || m.value.heartbeat == null) {
      framed.abort(new Error('lease refused'))
      const why = refusalIn(first)
      // the provider's own code (a busy provider's lease waits; a forged one's does not)
      throw new DbcError(why?.code ?? 'LEASE_REFUSED', `provider ${provider} did not accept the lease${why !== undefined ? ` (${why.code}: ${why.message})` : ''}`)
    }
    channel = new LeaseTaskChannel(framed, () => { this.emit(provider, lease.leaseId ?? new Uint8Array()) })
    // tasks ride the lease stream, except on a relay's limited connection: there each task's
    // stream is sized against the bytes the relay still allows (src/net/routes)
    const held = { provider, stream: framed, ...(route.kind !== 'relayed' && route.limitBytesLeft === undefined ? { channel } : {}) }
    this.leases.set(key, held)
    this.emit(provider, lease.leaseId ?? new Uint8Array())
    // heartbeats and results until the stream ends
    void channel.pump().finally(() => { if (this.leases.get(key) === held) this.leases.delete(key) })
  }

  private emit (provider: string, leaseId: Uint8Array): void {
    const at = Date.now()
    for (const l of this.listeners) l({ provider, leaseId, at })
  }

  closeLease (_provider: string, leaseId: Uint8Array): void {
    const key = toHex(leaseId)
    const l = this.leases.get(key)
    this.leases.delete(key)
    if (l?.pinned === true) this.routes.unpin(l.provider)
    void l?.stream.close().catch(() => {})
  }

  async runTask (provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal }): Promise<dbc.task.v1.ITaskResult> {
    // the provider forgot a lease whose stream ended (closed, or it restarted): a task sent under it
    // would be charged there as one under a lease never opened, so it fails here and goes elsewhere
    const held = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
    if (held?.provider !== provider) throw new DbcError('LEASE_LOST', `the lease with provider ${provider} is closed; the task runs under another lease`)
    // the task goes as the runner built it: whether it carries the code is the job's code cache's
    // decision (src/core/scheduler/code-cache.ts), which also re-sends it on CODE_MISSING
    const code = task.code ?? new Uint8Array()
    const send = code.length > 0 && (task.codeHash == null || task.codeHash.length === 0) ? { ...task, codeHash: sha256(code) } : task
    if (held.channel?.open === true) {
      const bytes = TaskMessage.encode({ task: send }).finish()
      if (bytes.length <= LEASE_STREAM_MAX_TASK_BYTES) return trustedResult(await held.channel.run(send, bytes, opts.signal))
    }
    let reply: dbc.task.v1.TaskMessage
    try {
      reply = await this.request(peerIdFromString(provider), { task: send }, opts.signal)
    } catch (err) {
      // a typed refusal (the provider's TASK_TOO_LARGE, a relay's ROUTE_LIMIT on either side) is a
      // failed copy with its code, like a result; an abort or a broken stream stays thrown
      // the overlay losing the message (RouteLostError) is a lost copy too: the provider never answered
      // a stream that ended before the answer (STREAM_ENDED, ours) stays thrown too: only our own
      // transport may call a copy unanswered, never a code the provider sends (review M4)
      if (opts.signal?.aborted === true || !(err instanceof DbcError) || err instanceof RouteLostError || NO_ANSWER_CODES.has(err.code)) throw err
      return { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: false, code: resultCode({ ok: false, code: err.code }), error: `${err.code}: ${err.message}` }
    }
    if (reply.result == null) throw new DbcError('BAD_REPLY', `provider ${provider} answered a task with something else than a result`)
    const r = reply.result
    // the code is the provider's: trusted only as a code's shape (resultCode); the decoded message is ours to set
    if (r.ok !== true) r.code = resultCode(r) ?? 'TASK_FAILED'
    return r
  }

  /**
   * The payer's latest voucher for a job, on a stream of its own; resolves with the voucher the
   * provider now holds for the job (a refusal rejects with its typed error).
   */
  async sendVoucher (provider: string, voucher: dbc.task.v1.IVoucher, opts: { signal?: AbortSignal } = {}): Promise<dbc.task.v1.IVoucher | undefined> {
    const reply = await this.request(peerIdFromString(provider), { voucher }, opts.signal ?? AbortSignal.timeout(10_000))
    return reply.voucher ?? undefined
  }

  onHeartbeat (listener: (hb: { provider: string, leaseId: Uint8Array, at: number }) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  close (): void {
    for (const l of this.leases.values()) { if (l.pinned === true) this.routes.unpin(l.provider); void l.stream.close().catch(() => {}) }
    this.leases.clear()
    this.routes.close()
  }
}
