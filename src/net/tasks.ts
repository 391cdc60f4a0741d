// /dbc/task/1.0.0: grid-job messages between a submitter and providers over libp2p.
//
// One request per stream (lease request → offer, task → result, voucher → the voucher the
// provider now holds for the job, or a typed refusal); a lease has its own long-lived stream on
// which the provider sends heartbeats until the lease closes or a side dies, and which carries
// the lease's tasks and their results, pipelined and tagged by task id (task-lease-stream.ts; a
// large task, or one over a relay's limited connection, still goes on a stream of its own). The stream runs end to end between the two peers inside the
// Noise session, so task inputs and results are encrypted between submitter and provider;
// relayed (multi-path) copies use sealed envelopes instead (src/crypto/envelope.ts). This file is
// the submitter's side; the provider's is task-server.ts, the shared limits task-protocol.ts.
import type { PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { sha256 } from '@noble/hashes/sha2.js'
import { FramedStream } from './framed.js'
import { guardOf } from './guard/index.js'
import { canPause } from './guard/outbound.js'
import { decodeMessage } from '../wire/decode.js'
import { dbc } from '../wire/gen/wire.js'
import { WireError, DbcError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import type { Host } from './host.js'
import { NO_ANSWER_CODES, offerView, resultCode, type JobTransport, type OfferRoundReport, type TransportOffer } from '../core/scheduler/ports.js'
import { LEASE_STREAM_MAX_TASK_BYTES, LeaseTaskChannel, trustedResult } from './task-lease-stream.js'
import { taskFrameBytes } from './task-frames.js'
import { RouteBook, RouteLostError } from './routes/index.js'
import { routeCost } from '../core/scheduler/route-cost.js'
import { isRefusalCode } from '../core/scheduler/lease-search.js'
import { CANDIDATES_TTL_MS, TASK_MAX_FRAME, TASK_PROTOCOL, TASK_REQUEST_MAX_FRAME, resultFrameCap } from './task-protocol.js'
import { ResultAdmission } from '../core/scheduler/result-admission.js'
import { openBeforeReady } from './lease-preopen.js'

export { TASK_PROTOCOL, TASK_MAX_FRAME, TASK_REQUEST_MAX_FRAME, TASK_CODE_ALLOWANCE, TASK_WRITE_TIMEOUT_MS, CANDIDATES_TTL_MS, taskFrameCap } from './task-protocol.js'
export { registerTaskProtocol, TaskTooLargeError, type TaskServerInit, type VoucherTaker } from './task-server.js'

const log = logger('dbc:task')
/**
 * The largest answer to a lease request or a voucher (an offer, the voucher held, or a typed
 * refusal: a few hundred bytes). Before, such answers were read with the result limit (16 MiB):
 * any candidate, with no lease, could put 16 MiB per answer into the outbound budget (review s11 L8).
 */
export const TASK_ANSWER_MAX_FRAME = TASK_REQUEST_MAX_FRAME
const TaskMessage = dbc.task.v1.TaskMessage

/** The typed refusal (a ProtocolError frame) a provider sent instead of an answer, if that is what `frame` is. */
function refusalIn (frame: Uint8Array): DbcError | undefined {
  try {
    const e = dbc.common.v1.ProtocolError.decode(frame)
    if (e.code === '') return undefined
    // the code and text are the provider's: a well-formed code or LEASE_REFUSED, and a bounded message
    return new DbcError(isRefusalCode(e.code) ? e.code : 'LEASE_REFUSED', e.message.slice(0, 512))
  } catch { return undefined }
}

/** Why a candidate gave no offer, in a few words for explain (the error's own text, bounded). */
function noAnswerReason (err: unknown, timeoutMs: number): string {
  const e = err as { name?: string, message?: string }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`
  // a typed error frame instead of an offer (refusalIn): the peer answered, but with no offer
  const typed = err instanceof DbcError && !(err instanceof WireError) ? `${err.code}: ` : ''
  const text = (typed + String(e?.message ?? err)).replace(/[^\x20-\x7e]/g, '?')
  return text.length > 160 ? `${text.slice(0, 160)}...` : text
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

/** A lease this node holds: its stream, and (on a lease stream) its result frame bound and whether its results can be paused. */
/** `bundle`: its offer runs TaskBundles of up to this many tasks and the job uses them (openLease's opts.bundle). */
interface HeldLease { provider: string, stream: { close: () => Promise<void> }, pinned?: boolean, channel?: LeaseTaskChannel, resultCap?: number, unpausable?: boolean, bundle?: number }

/** Per host: the admission of copies on WebRTC leases (result-admission.ts), against the guard's cap. */
const admissions = new WeakMap<object, ResultAdmission>()

/** Submitter side: a JobTransport over libp2p streams. Provider ids are peer id strings. */
export class Libp2pJobTransport implements JobTransport {
  private readonly host: Host
  private readonly init: Libp2pJobTransportInit
  /** The route to each provider (direct, hole-punched, relayed via which relay), for explain. */
  readonly routes: RouteBook
  /** `channel`: the lease's own stream, which carries its tasks (none over the overlay or a relay's limited connection). */
  private readonly leases = new Map<string, HeldLease>()
  private readonly listeners = new Set<(hb: { provider: string, leaseId: Uint8Array, at: number }) => void>()
  /** Recent candidate lookups by request shape (candidatesFor). */
  private readonly candidateCache = new Map<string, { at: number, peers: Promise<PeerId[]> }>()

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

  /**
   * The providers to ask: `init.candidates` (a capability lookup through the DHT) answers the
   * rounds of the next CANDIDATES_TTL_MS for the same request shape, shared while in flight. A
   * job's runner asks again and again while its leases run (most rounds exclude every candidate),
   * and each lookup cost the submitter ~5% of its CPU and every provider more serving it. Peers
   * connected since are added to a kept list; a provider known only to the DHT waits for the next lookup.
   */
  private async candidatesFor (req: dbc.task.v1.ILeaseRequest): Promise<PeerId[]> {
    if (this.init.candidates === undefined) return await this.defaultCandidates()
    const key = candidateKey(req)
    const now = Date.now()
    const hit = this.candidateCache.get(key)
    if (hit !== undefined && now - hit.at < CANDIDATES_TTL_MS) {
      // peers connected since the lookup are asked too (as the lookup itself adds connected peers)
      const list = await hit.peers
      const seen = new Set(list.map(p => p.toString()))
      const fresh = this.host.getPeers().filter(p => !seen.has(p.toString()))
      return fresh.length === 0 ? list : [...list, ...fresh]
    }
    const peers = Promise.resolve(this.init.candidates(req))
    const entry = { at: now, peers }
    this.candidateCache.set(key, entry)
    if (this.candidateCache.size > 64) this.candidateCache.delete(this.candidateCache.keys().next().value as string)
    // a failed or empty lookup is not kept: the next round looks again
    const forget = (): void => { if (this.candidateCache.get(key) === entry) this.candidateCache.delete(key) }
    try {
      const list = await peers
      if (list.length === 0) forget()
      return list
    } catch (err) {
      forget()
      throw err
    }
  }

  private async request (peer: PeerId, msg: dbc.task.v1.ITaskMessage, signal?: AbortSignal, resultCap = TASK_MAX_FRAME): Promise<dbc.task.v1.TaskMessage> {
    const bytes = TaskMessage.encode(msg).finish()
    // the route book sends it over the overlay instead when it must (src/net/routes)
    // only a task's answer (its result) may be large: an offer or a voucher is a few hundred bytes (review s11 L8)
    const maxFrameBytes = msg.task != null ? resultCap : TASK_ANSWER_MAX_FRAME
    return await this.routes.request(peer, TASK_PROTOCOL, msg, bytes.length, signal, async (stream) => await this.streamRequest(peer, stream, bytes, maxFrameBytes, signal))
  }

  private async streamRequest (peer: PeerId, stream: Stream, bytes: Uint8Array, maxFrameBytes: number, signal?: AbortSignal): Promise<dbc.task.v1.TaskMessage> {
    const framed = new FramedStream(stream, { maxFrameBytes })
    // the answer (a result of up to TASK_MAX_FRAME, an offer or voucher of up to TASK_ANSWER_MAX_FRAME)
    // is read under the node's outbound read budget (src/net/guard/outbound.ts); a larger one fails
    // the request (no offer from that peer; not charged: a stream this node opened has no charge)
    guardOf(this.host).outbound.track(framed, peer, TASK_PROTOCOL, undefined, canPause(this.host.getConnections(peer), stream))
    const onAbort = (): void => { framed.abort(signal?.reason ?? new Error('aborted')) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await framed.write(bytes, { signal })
      const frame = await framed.readRequired({ signal })
      const m = decodeMessage(TaskMessage, frame)
      const answered = m.ok && (m.value.offer != null || m.value.result != null || m.value.heartbeat != null || m.value.voucher != null)
      if (!answered) throw refusalIn(frame) ?? (m.ok ? new WireError('UNEXPECTED_MESSAGE', 'the provider answered with no offer or result') : m.error)
      // one answer per request: a frame after it (queued already, or still to come) would be held
      // unread until the stream ends (on WebRTC, never paused): dropped instead
      framed.stopReading()
      await framed.close().catch(() => {})
      return m.value
    } catch (err) {
      framed.abort(err as Error)
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  async requestOffers (req: dbc.task.v1.ILeaseRequest, opts: { signal?: AbortSignal, exclude?: ReadonlySet<string>, report?: (r: OfferRoundReport) => void }): Promise<TransportOffer[]> {
    const all = await this.candidatesFor(req)
    const peers = all.filter(p => opts.exclude?.has(p.toString()) !== true).slice(0, this.init.maxCandidates ?? 64)
    log('asking %d of %d candidates for offers', peers.length, all.length)
    const timeout = this.init.offerTimeoutMs ?? 5000
    const silent: OfferRoundReport['silent'] = []
    const answers = await Promise.all(peers.map(async peer => {
      const signal = AbortSignal.any([AbortSignal.timeout(timeout), ...(opts.signal !== undefined ? [opts.signal] : [])])
      try {
        const reply = await this.request(peer, { leaseRequest: req }, signal)
        if (reply.offer == null) return undefined
        return { peer, offer: reply.offer }
      } catch (err) {
        log('no offer from %p: %s', peer, (err as Error).message)
        // explain lists it (before, only DEBUG=dbc:task did): a job's own abort is not the peer's silence
        if (opts.signal?.aborted !== true) silent.push({ provider: peer.toString(), reason: noAnswerReason(err, timeout) })
        return undefined
      }
    }))
    if (opts.signal?.aborted !== true) opts.report?.({ asked: peers.length, silent })
    // nobody asked made an offer (all refused, or the lookup missed the providers that would: a
    // lookup cut short on a loaded node finds the nearest records only): the next round looks up
    // again instead of asking the same peers for CANDIDATES_TTL_MS
    if (peers.length > 0 && answers.every(a => a === undefined)) this.candidateCache.delete(candidateKey(req))
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

  async openLease (provider: string, lease: dbc.task.v1.ILease, opts: { signal?: AbortSignal, maxResultBytes?: number, bundle?: number, ready?: Promise<unknown> }): Promise<void> {
    const peer = peerIdFromString(provider)
    const key = toHex(lease.leaseId ?? new Uint8Array())
    const via = this.routes.overlayFor(provider, { lease })
    if (via !== undefined) {
      await opts.ready
      // over the overlay the provider pushes heartbeats as envelopes (src/net/overlay/task-envelopes.ts)
      const held = await via.overlay.openLease(provider, lease, { signal: AbortSignal.any([AbortSignal.timeout(30_000), ...(opts.signal !== undefined ? [opts.signal] : [])]), onHeartbeat: () => { this.emit(provider, lease.leaseId ?? new Uint8Array()) } })
      this.routes.recordOverlay(provider, held.relays, via.why)
      // a private provider with a live lease is never evicted from the private set (routes/private-peers.ts)
      this.leases.set(key, { provider, stream: held, pinned: this.routes.pin(provider) })
      this.emit(provider, lease.leaseId ?? new Uint8Array())
      return
    }
    // a lease stream carries heartbeats for the lease's life: on a relayed connection it lives as long as the relay allows
    // (opened while the job's escrow deposit is mined, `ready`: the lease frame waits for it)
    const { stream, route } = await openBeforeReady(async () => await this.routes.open(peer, TASK_PROTOCOL, 1024, { signal: opts.signal, replyBytes: 4096 }), opts.ready)
    // results come back on it too: up to the task protocol's frame limit while a copy is in flight, a heartbeat's otherwise
    let channel: LeaseTaskChannel | undefined
    // (the result bound the lease request announced, plus a result's other fields: not 16 MiB for every job)
    const resultCap = resultFrameCap(opts.maxResultBytes)
    const framed = new FramedStream(stream, { maxFrameBytes: () => channel?.frameLimit(resultCap) ?? TASK_REQUEST_MAX_FRAME })
    // result frames are read under the node's outbound read budget: past it the stream stops
    // reading (yamux stops the provider) until the budget frees; a partial frame has a deadline
    // (src/net/guard/outbound.ts); while it waits for the budget, or a frame is arriving, the
    // provider's heartbeats are stuck behind it: the lease counts as alive meanwhile
    // (a stream on a WebRTC connection is never paused for the node budget: libp2p would reset it)
    const pausable = canPause(this.host.getConnections(peer), stream)
    guardOf(this.host).outbound.track(framed, peer, TASK_PROTOCOL, () => { this.emit(provider, lease.leaseId ?? new Uint8Array()) }, pausable)
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
    // a lease on a connection that cannot be paused (WebRTC) sends a copy only while its result bound fits the node's cap on such results
    // (only for a bound the job declared: reserving the 16 MiB default per copy would let 4 copies at
    // a time run on every WebRTC provider of the node together, whatever they return; an undeclared
    // bound is left to the guard's cap, past which the slowest is reset and its copy rerun)
    const held = { provider, stream: channel, resultCap, ...(opts.bundle !== undefined && opts.bundle > 1 ? { bundle: opts.bundle } : {}), ...(pausable || opts.maxResultBytes === undefined ? {} : { unpausable: true }), ...(route.kind !== 'relayed' && route.limitBytesLeft === undefined ? { channel } : {}) }
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

  async runTask (provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal, onAdmission?: (admitted: boolean) => void, bundle?: number, onSent?: (tasksInFrame: number) => void }): Promise<dbc.task.v1.ITaskResult> {
    // the provider forgot a lease whose stream ended (closed, or it restarted): a task sent under it
    // would be charged there as one under a lease never opened, so it fails here and goes elsewhere
    const held = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
    if (held?.provider !== provider) throw new DbcError('LEASE_LOST', `the lease with provider ${provider} is closed; the task runs under another lease`)
    // the task goes as the runner built it: whether it carries the code is the job's code cache's
    // decision (src/core/scheduler/code-cache.ts), which also re-sends it on CODE_MISSING
    // a WebRTC lease: the copy waits (in line, node-wide) until the result bounds in flight on such leases leave room for its own
    // (a waiting copy's deadline does not run; once admitted it is timed from then: onAdmission, the
    // job machine's handleCopyWaiting / handleCopyAdmitted)
    let release: (() => void) | undefined
    if (held.unpausable === true) {
      const bytes = held.resultCap ?? TASK_MAX_FRAME
      // (and one provider's copies within its share, half the cap: a silent one no longer holds it all, review s12 M2)
      release = this.admission().tryTake(bytes, provider)
      if (release === undefined) {
        opts.onAdmission?.(false)
        release = await this.admission().take(bytes, opts.signal, provider)
        opts.onAdmission?.(true)
      }
    }
    try {
      return await this.sendTask(held, provider, task, opts)
    } finally {
      release?.()
    }
  }

  /** Node-wide (one per host): the copies in flight on leases whose results cannot be paused. */
  private admission (): ResultAdmission {
    let a = admissions.get(this.host)
    if (a === undefined) {
      const outbound = guardOf(this.host).outbound
      a = new ResultAdmission(outbound.unpausableCap, Math.min(outbound.peerShare, outbound.unpausableCap))
      admissions.set(this.host, a)
    }
    return a
  }

  private async sendTask (held: HeldLease, provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal, bundle?: number, onSent?: (tasksInFrame: number) => void }): Promise<dbc.task.v1.ITaskResult> {
    const code = task.code ?? new Uint8Array()
    const send = code.length > 0 && (task.codeHash == null || task.codeHash.length === 0) ? { ...task, codeHash: sha256(code) } : task
    if (held.channel?.open === true) {
      // the Task encoded once: the channel frames it alone or in a TaskBundle with the lease's other
      // copies of this turn, only on a lease opened for bundles and never past its offer's bundle_max
      const bytes = dbc.task.v1.Task.encode(send).finish()
      const bundle = Math.min(opts.bundle ?? 1, held.bundle ?? 1)
      if (taskFrameBytes(bytes.length) <= LEASE_STREAM_MAX_TASK_BYTES) return trustedResult(await held.channel.run(send, bytes, { signal: opts.signal, onSent: opts.onSent, ...(bundle > 1 ? { bundle } : {}) }))
    }
    opts.onSent?.(1)
    let reply: dbc.task.v1.TaskMessage
    try {
      reply = await this.request(peerIdFromString(provider), { task: send }, opts.signal, held.resultCap)
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

/** The candidate cache's key: the request's shape (what the capability lookup depends on). */
function candidateKey (req: dbc.task.v1.ILeaseRequest): string {
  const r = req.resources
  return `${req.executor ?? ''}|${r?.gpuModel ?? ''}|${r?.gpuCount ?? 0}|${r?.gpuMemoryMib ?? 0}|${r?.cpuCores ?? 0}|${r?.memoryMib ?? 0}`
}
