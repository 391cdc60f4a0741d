// Request/response and one-way messages of any size over sealed envelopes: each message is cut
// into chunks (src/core/routing/chunker.ts), each chunk one envelope acked by the recipient on
// its own; a chunk whose every path failed is sent again later, the acked ones never. Replies
// are matched to requests by the request's 16-byte id; copies (k paths, re-sends) are
// deduplicated by the envelope window and then by the assembler. One-way frames carry another
// application's messages (training: src/training/transport.ts) through the same budgets.
import { DbcError } from '../../errors.js'
import { toHex } from '../../core/identity/index.js'
import { ChunkAssembler, OutgoingChunks, encodeChunk, splitMessage, DEFAULT_CHUNK_BYTES, MESSAGE_ID_BYTES, type AssemblerLimits, type ChunkKind, type ChunkRefusal } from '../../core/routing/chunker.js'
import { dbc } from '../../wire/gen/wire.js'
import type { ReceivedMessage } from './envelopes.js'

/** Envelope content type of the chunked task application (one app id: every chunk kind rides it). */
export const TASK_APP_CONTENT = dbc.envelope.v1.ContentType.CONTENT_TASK

/** What the messenger needs of the envelope service (EnvelopeService; an in-memory pair in tests). */
export interface EnvelopeLink {
  send: (recipient: string, payload: Uint8Array, opts: { k?: number, direct?: boolean, contentType?: number, signal?: AbortSignal, ttlMs?: number }) => Promise<{ via?: string }>
  subscribe: (fn: (msg: ReceivedMessage) => void) => () => void
}

export interface ChunkMessengerInit {
  /** Paths per chunk (default 2). */
  k?: number
  /** Whether a chunk may go on a direct connection (false: relays only, for the privacy route). */
  direct?: boolean | ((peer: string) => boolean)
  chunkBytes?: number
  /** Chunks of one message in flight at once. */
  window?: number
  /** Failed sends of one chunk before the message fails (each send already tried every path). */
  maxChunkFailures?: number
  /** Wait before a failed chunk goes again (ms; times the failures so far). */
  retryBackoffMs?: number
  limits?: Partial<AssemblerLimits>
  /** Largest message `peer` may send us of `kind` (a stranger's request is small; see task-envelopes.ts). */
  maxMessageBytes?: (peer: string, kind: ChunkKind) => number
  /** Largest reply taken from a peer we asked (default 16 MiB, the task stream's frame cap). */
  maxReplyBytes?: number
  /**
   * Requests answered at once per peer (default 64) and in total (default 1024); beyond, or when
   * their bytes do not fit the assembler's per-peer/total budgets: OVERLAY_BUSY.
   */
  maxServingPerPeer?: number
  maxServing?: number
  /** A request arrived whole: answer with bytes (a response) or throw (an error reply). */
  onRequest?: (peer: string, payload: Uint8Array) => Promise<Uint8Array>
  /** A one-way message arrived whole. */
  onOneWay?: (peer: string, kind: 'heartbeat' | 'close', payload: Uint8Array) => void
  /** A chunk was refused (typed); the caller decides whether to charge. */
  onRefused?: (peer: string, code: ChunkRefusal, reason: string) => void
  random?: (n: number) => Uint8Array
  now?: () => number
}

/** The task stream's frame cap (TASK_MAX_FRAME in src/net/tasks.ts): a reply is a result at most. */
export const DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024

export interface SentMessage { relays: string[], chunks: number, sends: number }

interface Pending { resolve: (r: { payload: Uint8Array }) => void, reject: (e: Error) => void }

/**
 * Who takes one-way frames (the training transport): `maxBytes(peer)` bounds each frame a peer
 * may send (0: none); a whole frame goes to `onFrame`. Frames share the assembler's budgets
 * with task messages (per peer and in total), so the overlay holds no more for two applications.
 */
export interface FrameHandler {
  maxBytes: (peer: string) => number
  onFrame: (peer: string, frame: Uint8Array) => void
}

/** What the training transport needs of the overlay: frames out (chunked, acked) and in. */
export interface FrameLink {
  sendFrame: (peer: string, frame: Uint8Array, signal?: AbortSignal) => Promise<SentMessage>
  attachFrames: (h: FrameHandler) => () => void
  /** The largest frame the receiver's budgets can hold (its per-peer budget for incomplete messages). */
  readonly maxFrameBytes: number
}

/** Error replies carry a ProtocolError: code + message. */
export function encodeErrorReply (code: string, message: string): Uint8Array {
  return dbc.common.v1.ProtocolError.encode({ code, message: message.slice(0, 1024) }).finish()
}

export class ChunkMessenger implements FrameLink {
  readonly assembler: ChunkAssembler
  readonly stats = { requests: 0, responses: 0, chunksSent: 0, chunkResends: 0, refused: 0, framesSent: 0, framesReceived: 0 }
  private frames: FrameHandler | undefined
  private readonly pending = new Map<string, Pending>()
  private readonly serving = new Map<string, number>()
  private servingTotal = 0
  private readonly unsubscribe: () => void
  private readonly now: () => number
  private readonly random: (n: number) => Uint8Array
  private readonly chunkBytes: number
  private readonly expireTimer: ReturnType<typeof setInterval>

  constructor (private readonly link: EnvelopeLink, private readonly init: ChunkMessengerInit = {}) {
    this.now = init.now ?? Date.now
    this.random = init.random ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)))
    this.chunkBytes = init.chunkBytes ?? DEFAULT_CHUNK_BYTES
    this.assembler = new ChunkAssembler({ maxChunkBytes: this.chunkBytes, ...init.limits }, (peer, kind) => {
      // a reply is taken only from a peer we asked (its id then matches a pending request)
      if (kind === 'response' || kind === 'error') return this.expectsReplyFrom(peer) ? (init.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES) : 0
      if (kind === 'frame') return this.frames?.maxBytes(peer) ?? 0
      return init.maxMessageBytes?.(peer, kind) ?? 64 * 1024
    })
    this.unsubscribe = link.subscribe(msg => { this.onEnvelope(msg) })
    // incomplete messages expire even when no new chunk comes to run the assembler's expiry
    const ttl = this.assembler.limits.partialTtlMs
    this.expireTimer = setInterval(() => { this.assembler.expire(this.now()) }, Math.max(10, Math.min(10_000, Math.floor(ttl / 2))))
    this.expireTimer.unref?.()
  }

  close (): void {
    clearInterval(this.expireTimer)
    this.unsubscribe()
    for (const p of this.pending.values()) p.reject(new DbcError('OVERLAY_STOPPED', 'the overlay route closed before the reply came'))
    this.pending.clear()
  }

  /** Sends `payload` as a request and resolves with the reply (an error reply rejects with its code). */
  async request (peer: string, payload: Uint8Array, opts: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<{ payload: Uint8Array, relays: string[] }> {
    const id = this.random(MESSAGE_ID_BYTES)
    const key = `${peer}\n${toHex(id)}`
    const timeoutMs = opts.timeoutMs ?? 120_000
    // a timer of our own (AbortSignal.timeout does not hold the process open while the reply is awaited)
    const timeout = new AbortController()
    const timer = setTimeout(() => { timeout.abort() }, timeoutMs)
    const signal = AbortSignal.any([timeout.signal, ...(opts.signal !== undefined ? [opts.signal] : [])])
    const reply = new Promise<{ payload: Uint8Array }>((resolve, reject) => {
      this.pending.set(key, { resolve, reject })
    })
    const onAbort = (): void => {
      const p = this.pending.get(key)
      if (p === undefined) return
      this.pending.delete(key)
      const reason = opts.signal?.aborted === true ? opts.signal.reason as Error : new DbcError('OVERLAY_TIMEOUT', `no reply from ${peer} over the overlay within ${timeoutMs} ms`, { hint: 'the provider may be offline, or no relay reaches it' })
      p.reject(reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    reply.catch(() => {}) // awaited below, once every chunk is acked
    this.stats.requests++
    try {
      const sent = await this.send(peer, 'request', id, payload, signal)
      return { payload: (await reply).payload, relays: sent.relays }
    } catch (err) {
      this.pending.delete(key)
      throw err
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** The largest frame a receiver with our budgets holds (frames above it are refused CHUNK_PEER_LIMIT). */
  get maxFrameBytes (): number { return this.assembler.limits.maxBytesPerPeer }

  /** One frame of another application (training), one way; resolves once every chunk was acked. */
  async sendFrame (peer: string, frame: Uint8Array, signal?: AbortSignal): Promise<SentMessage> {
    const sent = await this.send(peer, 'frame', this.random(MESSAGE_ID_BYTES), frame, signal)
    this.stats.framesSent++
    return sent
  }

  /** Frames arriving from now on go to `h` (one handler: a later one replaces it); returns the detach. */
  attachFrames (h: FrameHandler): () => void {
    this.frames = h
    return () => { if (this.frames === h) this.frames = undefined }
  }

  /** A one-way message (a lease's heartbeat or close); resolves once every chunk was acked. */
  async oneWay (peer: string, kind: 'heartbeat' | 'close', payload: Uint8Array, signal?: AbortSignal): Promise<SentMessage> {
    return await this.send(peer, kind, this.random(MESSAGE_ID_BYTES), payload, signal)
  }

  /** Sends every chunk of one message; a failed chunk goes again (after a backoff) until acked or out of tries. */
  async send (peer: string, kind: ChunkKind, id: Uint8Array, payload: Uint8Array, signal?: AbortSignal): Promise<SentMessage> {
    const chunks = splitMessage(kind, id, payload, this.chunkBytes)
    const out = new OutgoingChunks(chunks.length, this.init.window ?? 4, this.init.maxChunkFailures ?? 3)
    const relays = new Set<string>()
    const direct = typeof this.init.direct === 'function' ? this.init.direct(peer) : this.init.direct
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const fail = (err: Error): void => { if (!settled) { settled = true; reject(err) } }
      if (signal?.aborted === true) { fail(signal.reason as Error); return }
      signal?.addEventListener('abort', () => { fail(signal.reason as Error) }, { once: true })
      const pump = (): void => {
        if (settled) return
        if (out.done) { settled = true; resolve(); return }
        for (const i of out.next()) {
          this.stats.chunksSent++
          this.link.send(peer, encodeChunk(chunks[i]), { k: this.init.k ?? 2, ...(direct !== undefined ? { direct } : {}), contentType: TASK_APP_CONTENT, ...(signal !== undefined ? { signal } : {}) })
            .then(r => { if (r.via !== undefined) relays.add(r.via); out.ack(i); pump() }, (err: Error) => {
              if (!out.fail(i)) { fail(err); return }
              this.stats.chunkResends++
              // resume: only this chunk goes again, once its paths had a moment to change
              setTimeout(pump, (this.init.retryBackoffMs ?? 250) * (out.sends - out.ackedCount))
            })
        }
      }
      pump()
    })
    return { relays: [...relays], chunks: chunks.length, sends: out.sends }
  }

  private expectsReplyFrom (peer: string): boolean {
    for (const k of this.pending.keys()) if (k.startsWith(`${peer}\n`)) return true
    return false
  }

  private onEnvelope (msg: ReceivedMessage): void {
    if (msg.contentType !== TASK_APP_CONTENT) return
    const v = this.assembler.accept(this.now(), msg.sender, msg.payload)
    if (v.type === 'refused') {
      this.stats.refused++
      this.init.onRefused?.(msg.sender, v.code, v.reason)
      return
    }
    if (v.type !== 'complete') return
    const peer = msg.sender
    if (v.kind === 'request') {
      const handler = this.init.onRequest
      if (handler === undefined) return
      // bounded work: requests being answered per peer and in total (a stream has its stream caps)
      // and their bytes count against the assembler's budgets until the handler settles
      const mine = this.serving.get(peer) ?? 0
      const size = v.payload.length
      if (mine >= (this.init.maxServingPerPeer ?? 64) || this.servingTotal >= (this.init.maxServing ?? 1024) || !this.assembler.hold(peer, size)) {
        void this.send(peer, 'error', v.id, encodeErrorReply('OVERLAY_BUSY', 'too many requests (or bytes) from you or in all are being answered; try again later')).catch(() => {})
        return
      }
      this.serving.set(peer, mine + 1); this.servingTotal++
      const done = (): void => {
        this.assembler.release(peer, size)
        this.servingTotal--
        const n = (this.serving.get(peer) ?? 1) - 1
        if (n <= 0) this.serving.delete(peer); else this.serving.set(peer, n)
      }
      void handler(peer, v.payload).finally(done).then(
        async reply => { this.stats.responses++; await this.send(peer, 'response', v.id, reply) },
        async (err: Error & { code?: string }) => { await this.send(peer, 'error', v.id, encodeErrorReply(err.code ?? 'ERROR', err.message)) }
      ).catch(() => {}) // the requester times out and tries elsewhere
      return
    }
    if (v.kind === 'response' || v.kind === 'error') {
      const key = `${peer}\n${toHex(v.id)}`
      const p = this.pending.get(key)
      if (p === undefined) return
      this.pending.delete(key)
      if (v.kind === 'response') { p.resolve({ payload: v.payload }); return }
      let code = 'ERROR'; let message = 'the peer refused the request'
      try { const e = dbc.common.v1.ProtocolError.decode(v.payload); code = e.code; message = e.message } catch {}
      p.reject(Object.assign(new DbcError(/^[A-Z][A-Z0-9_]{1,63}$/.test(code) ? code : 'ERROR', message.slice(0, 512)), { remote: true }))
      return
    }
    if (v.kind === 'frame') {
      this.stats.framesReceived++
      this.frames?.onFrame(peer, v.payload)
      return
    }
    this.init.onOneWay?.(peer, v.kind, v.payload)
  }
}
