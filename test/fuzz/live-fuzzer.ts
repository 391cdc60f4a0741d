// A live-node fuzzer: from this process, libp2p hosts with throw-away identities send malformed
// frames at every protocol the running daemon registered (read from identify: see
// discoverProtocols; test/fuzz/targets.ts holds a crafter table per protocol): random bytes,
// bodies that do not decode, truncations, oversized length prefixes, messages of the wrong type,
// envelopes with bad signatures or tampered ciphertext, replays of valid envelopes, and
// well-formed but hostile messages. Each identity also answers the node's Vivaldi probes with
// coordinates no honest peer sends (NaN, 1e308, -Infinity). An identity is retired once the node
// disconnects or refuses it, or after its share of frames; a fresh one takes over.
// Shared by the quick test (a few thousand frames) and the long one (100,000).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { createHost, type Host } from '../../src/net/host.js'
import { encodeFrame, encodeFramePrefix } from '../../src/wire/frame.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { createRng, type Rng } from '../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../src/core/identity/index.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { FramedStream } from '../../src/net/framed.js'
import { AckStatus } from '../../src/crypto/ack.js'
import { VIVALDI_PROTOCOL } from '../../src/net/overlay/overlay.js'
import { RELAY_PROTOCOL, RELAY_PROTOCOL_UNSEALED } from '../../src/net/overlay/envelopes.js'
import { fuzzTargetFor, missingFuzzTargets, fuzzEnvelope, relayRequest, badAnnouncement, HOSTILE_COORDINATES, type CraftContext } from './targets.js'

export const FUZZ_CASES = ['random-bytes', 'garbage-body', 'truncated', 'oversized', 'wrong-type', 'bad-signature', 'tampered', 'replay', 'hostile'] as const
export type FuzzCase = typeof FUZZ_CASES[number]

export interface FuzzTarget { peerId: string, addr: string }

/** One throw-away identity: a libp2p host plus the raw key bytes to sign with. */
export interface FuzzIdentity {
  host: Host
  peerId: string
  secret: Uint8Array
  peerBytes: Uint8Array
  /** The node closed our connection (hung up / refused us). */
  disconnected: boolean
  frames: number
  /** Frames on a dbc protocol that break it whatever the bytes drawn (oversized, truncated, tampered). */
  definitelyBad: number
  /** protocol case, for each frame that breaks the protocol whatever the bytes (to name what went uncharged) */
  badCases?: string[]
  /** Vivaldi probes from the node this identity answered with a hostile coordinate. */
  vivaldiAnswers: number
}

/** `hostileVivaldi`: answer the node's Vivaldi probes with coordinates no honest peer sends (the fuzzer's identities do). */
export async function newIdentity (opts: { hostileVivaldi?: boolean } = {}): Promise<FuzzIdentity> {
  const key = await generateKeyPair('Ed25519')
  const host = await createHost({ privateKey: key, listen: [], connectionMonitor: false, dhtServer: false })
  const id: FuzzIdentity = { host, peerId: host.peerId.toString(), secret: key.raw, peerBytes: host.peerId.toMultihash().bytes, disconnected: false, frames: 0, definitelyBad: 0, vivaldiAnswers: 0 }
  host.addEventListener('peer:disconnect', () => { id.disconnected = true })
  // the node probes peers in its view: answer with a coordinate that would poison its own
  if (opts.hostileVivaldi === true) {
    await host.handle(VIVALDI_PROTOCOL, (stream) => {
      const framed = new FramedStream(stream, { maxFrameBytes: 256 })
      void (async () => {
        for (let i = 0; i < 2; i++) {
          if (await framed.read({ signal: AbortSignal.timeout(5000) }) === undefined) break
          await framed.write(dbc.membership.v1.VivaldiProbe.encode({ coordinate: HOSTILE_COORDINATES[(id.vivaldiAnswers + i) % HOSTILE_COORDINATES.length] }).finish())
        }
        id.vivaldiAnswers++
        await framed.close()
      })().catch(err => { framed.abort(err as Error) })
    }, { runOnLimitedConnection: true })
  }
  return id
}

/**
 * Bytes to send on one stream for (protocol, case), how many frames they hold, and how many
 * distinct envelopes in them the node may legitimately deliver (`deliverable`): a replayed valid
 * envelope counts once, and so does a static-mode envelope to the node whose signature alone was
 * broken (by design the node trusts the pair key's AEAD tag there: `trustAead`).
 */
export function craft (rng: Rng, id: FuzzIdentity, target: { peerBytes: Uint8Array }, protocol: string, kase: FuzzCase, now: number, markerDir?: string): { bytes: Uint8Array[], frames: number, deliverable?: number, hostile?: string } {
  const spec = fuzzTargetFor(protocol)
  if (spec === undefined) throw new Error(`no fuzz target for ${protocol}: add one to test/fuzz/targets.ts`)
  const c: CraftContext = { rng, id, target, now, markerDir }
  const rand = (n: number): Uint8Array => rng.bytes(new Uint8Array(n))
  // a valid message of the protocol (truncated) or, for libp2p's own, a framed random body
  const valid = (): Uint8Array => spec.valid !== undefined ? spec.valid(c) : rand(8 + rng.int(120))
  switch (kase) {
    case 'random-bytes': return { bytes: [rand(1 + rng.int(2048))], frames: 1 }
    case 'garbage-body': {
      // well-framed bodies that are not the protocol's message (0xff... is an invalid tag/wire type)
      const n = 1 + rng.int(8)
      return { bytes: Array.from({ length: n }, () => encodeFrame(new Uint8Array([0x0f + rng.int(2) * 0xf0, ...rand(rng.int(200))]))), frames: n }
    }
    case 'truncated': {
      const full = encodeFrame(valid())
      return { bytes: [full.subarray(0, 1 + rng.int(full.length - 1))], frames: 1 }
    }
    case 'oversized': {
      // just over the protocol's own limit, or far over any limit
      const over = spec.maxFrame !== undefined && rng.int(2) === 0 ? spec.maxFrame + 1 + rng.int(16) : 64 * 1024 * 1024 + 1 + rng.int(1 << 30)
      return { bytes: [encodeFramePrefix(over), rand(rng.int(512))], frames: 1 }
    }
    case 'wrong-type': {
      const others = [
        dbc.task.v1.TaskMessage.encode({ heartbeat: { leaseId: rand(16), at: now } }).finish(),
        dbc.receipt.v1.SignedReceipt.encode({ receipt: rand(64), signature: rand(64) }).finish(),
        dbc.training.v1.TrainingMessage.encode({} as any).finish(),
        dbc.envelope.v1.Ack.encode({ messageId: rand(16), pathId: 3, status: 1 }).finish(),
        dbc.membership.v1.VivaldiProbe.encode({ coordinate: [1, 2, 3] }).finish(),
        dbc.task.v1.TaskMessage.encode({}).finish() // empty: decodes as anything, means nothing
      ]
      return { bytes: [encodeFrame(others[rng.int(others.length)])], frames: 1 }
    }
    case 'bad-signature':
    case 'tampered': {
      const tamper = kase === 'bad-signature' ? 'signature' : 'ciphertext'
      if (protocol === '/dbc/membership/1.0.0') return { bytes: [encodeFrame(badAnnouncement(c))], frames: 1 }
      // to the node itself, or through it to a random (unreachable) peer: a relay must check too
      const toNode = rng.int(2) === 0
      const to = toNode ? target.peerBytes : peerIdBytesFromEd25519Key(ed25519PublicKey(rand(32)))
      const e = fuzzEnvelope(c, to, tamper)
      const deliverable = toNode && tamper === 'signature' && e.ephemeralKey.length === 0 ? 1 : 0
      return { bytes: [encodeFrame(relayRequest(e))], frames: 1, deliverable }
    }
    case 'replay': {
      // one valid envelope to the node, then the same envelope again on other paths
      const e = fuzzEnvelope(c, target.peerBytes, 'none')
      const n = 2 + rng.int(4)
      return { bytes: Array.from({ length: n }, (_, i) => encodeFrame(relayRequest(e, i))), frames: n, deliverable: 1 }
    }
    case 'hostile': {
      const cases = spec.hostile ?? []
      if (cases.length === 0) throw new Error(`no hostile case for ${protocol}`)
      const h = cases[rng.int(cases.length)]
      const bodies = h.craft(c)
      // a well-formed envelope to the node is delivered by the envelope layer before its application refuses the payload
      const deliverable = protocol === RELAY_PROTOCOL || protocol === RELAY_PROTOCOL_UNSEALED ? bodies.filter(b => envelopeToNode(b, target.peerBytes)).length : 0
      return { bytes: bodies.map(b => encodeFrame(b)), frames: bodies.length, deliverable, hostile: h.name }
    }
  }
}

/** Whether a RelayRequest body carries an envelope addressed to the node (false for anything that does not decode). */
function envelopeToNode (body: Uint8Array, node: Uint8Array): boolean {
  try {
    const to = dbc.envelope.v1.RelayRequest.decode(body).envelope?.recipient
    return to != null && Buffer.from(to).equals(Buffer.from(node))
  } catch { return false }
}

/** Which of the daemon's protocols a case is sent to (signatures and replays only mean something on the overlay). */
export function protocolsFor (kase: FuzzCase, protocols: readonly string[]): string[] {
  return protocols.filter(p => {
    const t = fuzzTargetFor(p)
    if (t === undefined) return false
    if (kase === 'bad-signature' || kase === 'tampered') return t.owner === 'dbc' && t.signed === true
    if (kase === 'replay') return t.owner === 'dbc' && t.replay === true
    if (kase === 'hostile') return (t.hostile?.length ?? 0) > 0
    if (kase === 'wrong-type') return t.owner === 'dbc'
    return true
  })
}

/**
 * The protocols the daemon at `target` registered, as identify tells a connecting peer (the
 * same list `host.getProtocols()` gives inside the daemon).
 */
export async function discoverProtocols (target: FuzzTarget, opts: { timeoutMs?: number } = {}): Promise<string[]> {
  const id = await newIdentity()
  try {
    const peer = peerIdFromString(target.peerId)
    await id.host.dial(multiaddr(target.addr), { signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) })
    const end = Date.now() + (opts.timeoutMs ?? 10_000)
    for (;;) {
      const p = await id.host.peerStore.get(peer).catch(() => undefined)
      // more than one: the identify protocol itself is recorded as soon as it is negotiated, before
      // the identify answer with the full list arrives (returning then fuzzed /dbc/id alone)
      if (p !== undefined && p.protocols.length > 1) return [...p.protocols].sort()
      if (Date.now() > end) throw new Error(`identify did not list the protocols of ${target.peerId}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  } finally {
    await Promise.resolve(id.host.stop()).catch(() => {})
  }
}

export interface FuzzRunOptions {
  target: FuzzTarget
  frames: number
  seed?: number
  /** Identities fuzzing at once. */
  parallel?: number
  /** Frames an identity sends before it is retired (it is retired earlier when the node drops it). */
  framesPerIdentity?: number
  /** Streams one identity keeps open at once. */
  streamsPerIdentity?: number
  /** The daemon's protocols; default: read from identify after connecting (discoverProtocols). */
  protocols?: string[]
  /** Hostile invites name a command that would create a file here. */
  markerDir?: string
  onProgress?: (framesSent: number) => void
  signal?: AbortSignal
}

export interface FuzzRunReport {
  framesSent: number
  streams: number
  /** Streams the node refused to open (protocol negotiation or dial failed: e.g. we were banned). */
  refusedStreams: number
  identities: Array<{ peerId: string, frames: number, definitelyBad: number, disconnected: boolean, badCases?: string[] }>
  /** Distinct envelopes the node may deliver (see craft); the node must count each at most once. */
  validEnvelopes: number
  /** The node's Ack frames on the replay streams (see RelayAcks). */
  acks: RelayAcks
  /** The protocols fuzzed: every one the daemon registered. */
  protocols: string[]
  byCase: Record<string, number>
  byProtocol: Record<string, number>
  /** Hostile messages sent, by case name (targets.ts). */
  byHostile: Record<string, number>
  /** The node's Vivaldi probes answered with a hostile coordinate. */
  vivaldiAnswers: number
  elapsedMs: number
}

/**
 * What the node answered on the replay streams (/dbc/relay), one Ack frame per RelayRequest. An
 * OK ack is a delivery (src/net/overlay/relay-inbound.ts acks OK only the copy it hands to the
 * applications), so a (sender, message id) answered OK twice is an envelope delivered twice.
 */
export interface RelayAcks {
  read: number
  ok: number
  duplicate: number
  rejected: number
  unreachable: number
  /** `sender/message id` of every envelope answered OK more than once (must stay empty). */
  deliveredTwice: string[]
  /** Replay streams (one envelope on 2..5 paths) sent, and those whose every copy was answered. */
  replayStreams: number
  replaysAnswered: number
  /** Of the answered replay streams: those whose first copy was OK and every later one DUPLICATE. */
  replaysDeliveredOnce: number
}

/** Counts one stream's acks into `acks`; `okSeen`: the OK acks so far per `sender/message id`. */
function countAcks (acks: RelayAcks, okSeen: Map<string, number>, sender: string, frames: Uint8Array[]): dbc.envelope.v1.Ack[] {
  const out: dbc.envelope.v1.Ack[] = []
  for (const f of frames) {
    let a: dbc.envelope.v1.Ack
    try { a = dbc.envelope.v1.Ack.decode(f) } catch { continue }
    out.push(a)
    acks.read++
    if (a.status === AckStatus.OK) {
      acks.ok++
      const key = `${sender}/${Buffer.from(a.messageId).toString('hex')}`
      const n = (okSeen.get(key) ?? 0) + 1
      okSeen.set(key, n)
      if (n === 2) acks.deliveredTwice.push(key)
    } else if (a.status === AckStatus.DUPLICATE) acks.duplicate++
    else if (a.status === AckStatus.REJECTED) acks.rejected++
    else acks.unreachable++
  }
  return out
}

/**
 * Sends `chunks` on a new stream and closes it: 'closed' when the node saw our end (it has read
 * everything, or reset the stream in answer), 'aborted' when our own timeout reset it (a loaded node may then see only the reset, and
 * a frame cut by a reset is not the peer's fault), false when the stream was refused. With
 * `answers`, the node's frames on the stream are read into it until the node closes its end.
 */
async function sendStream (id: FuzzIdentity, target: Multiaddr, protocol: string, chunks: Uint8Array[], answers?: Uint8Array[]): Promise<'closed' | 'aborted' | false> {
  let stream
  try {
    stream = await id.host.dialProtocol(target, protocol, { signal: AbortSignal.timeout(5000) })
  } catch {
    return false
  }
  // the node's answers, when asked for: read from before the first byte goes out
  const framed = answers !== undefined ? new FramedStream(stream, { maxFrameBytes: 64 * 1024 }) : undefined
  try {
    for (const c of chunks) {
      if (!stream.send(c)) await stream.onDrain({ signal: AbortSignal.timeout(5000) })
    }
    await stream.close({ signal: AbortSignal.timeout(3000) })
    if (framed !== undefined && answers !== undefined) {
      // every frame is answered before the node closes its end (it closes once it has read ours);
      // a reset or a slow node ends the reading, not the verdict: the node saw our whole stream
      try {
        const signal = AbortSignal.timeout(5000)
        for (let f = await framed.read({ signal }); f !== undefined; f = await framed.read({ signal })) answers.push(f)
      } catch {
        stream.abort(new Error('fuzz stream done'))
      }
    }
    return 'closed'
  } catch (err) {
    stream.abort(new Error('fuzz stream done'))
    // the node resetting the stream is its answer too; only our own timeout leaves it unsure
    const name = (err as Error | undefined)?.name
    return name === 'TimeoutError' || name === 'AbortError' ? 'aborted' : 'closed'
  }
}

export async function runFuzz (opts: FuzzRunOptions): Promise<FuzzRunReport> {
  const rng = createRng(opts.seed ?? 1)
  const target = multiaddr(opts.target.addr)
  const targetBytes = (await import('@libp2p/peer-id')).peerIdFromString(opts.target.peerId).toMultihash().bytes
  const protocols = opts.protocols ?? await discoverProtocols(opts.target)
  const missing = missingFuzzTargets(protocols)
  if (missing.length > 0) throw new Error(`the daemon registered protocols the fuzzer has no target for: ${missing.join(', ')} (add them to test/fuzz/targets.ts)`)
  const acks: RelayAcks = { read: 0, ok: 0, duplicate: 0, rejected: 0, unreachable: 0, deliveredTwice: [], replayStreams: 0, replaysAnswered: 0, replaysDeliveredOnce: 0 }
  const okSeen = new Map<string, number>()
  const report: FuzzRunReport = { framesSent: 0, streams: 0, refusedStreams: 0, identities: [], validEnvelopes: 0, acks, protocols, byCase: {}, byProtocol: {}, byHostile: {}, vivaldiAnswers: 0, elapsedMs: 0 }
  const started = Date.now()
  const perIdentity = opts.framesPerIdentity ?? 400
  const streamsAtOnce = opts.streamsPerIdentity ?? 8
  const worker = async (w: number): Promise<void> => {
    const wrng = createRng((opts.seed ?? 1) * 1000 + w)
    while (report.framesSent < opts.frames && opts.signal?.aborted !== true) {
      const id = await newIdentity({ hostileVivaldi: true })
      try {
        let refusedInARow = 0
        const lane = async (): Promise<void> => {
          while (report.framesSent < opts.frames && id.frames < perIdentity && !id.disconnected && refusedInARow < 3 && opts.signal?.aborted !== true) {
            const kase = FUZZ_CASES[wrng.int(FUZZ_CASES.length)]
            const protos = protocolsFor(kase, protocols)
            if (protos.length === 0) continue
            const protocol = protos[wrng.int(protos.length)]
            const { bytes, frames, deliverable, hostile } = craft(wrng, id, { peerBytes: targetBytes }, protocol, kase, Date.now(), opts.markerDir)
            // the acks of replays are read (a round trip more per stream: the others are not waited for)
            const answers: Uint8Array[] | undefined = kase === 'replay' ? [] : undefined
            const ok = await sendStream(id, target, protocol, bytes, answers)
            report.streams++
            if (!ok) { report.refusedStreams++; refusedInARow++; continue }
            if (answers !== undefined) {
              // answers read up to a reset count too: an OK the node sent is a delivery either way
              const got = countAcks(acks, okSeen, id.peerId, answers)
              acks.replayStreams++
              if (got.length === frames) {
                acks.replaysAnswered++
                if (got[0].status === AckStatus.OK && got.slice(1).every(a => a.status === AckStatus.DUPLICATE)) acks.replaysDeliveredOnce++
              }
            }
            refusedInARow = 0
            id.frames += frames
            // random bytes or a wrong-type message can happen to decode as a valid (harmless)
            // message, since protobuf skips unknown fields; these three never can
            // (libp2p's own protocols do not report to the node's score book)
            if (ok === 'closed' && (kase === 'oversized' || kase === 'truncated' || kase === 'tampered') && fuzzTargetFor(protocol)?.owner === 'dbc') { id.definitelyBad++; (id.badCases ??= []).push(`${protocol} ${kase}`) }
            report.framesSent += frames
            report.byCase[kase] = (report.byCase[kase] ?? 0) + frames
            report.byProtocol[protocol] = (report.byProtocol[protocol] ?? 0) + frames
            if (hostile !== undefined) report.byHostile[hostile] = (report.byHostile[hostile] ?? 0) + 1
            report.validEnvelopes += deliverable ?? 0
            opts.onProgress?.(report.framesSent)
          }
        }
        await Promise.all(Array.from({ length: streamsAtOnce }, async () => { await lane() }))
      } finally {
        report.identities.push({ peerId: id.peerId, frames: id.frames, definitelyBad: id.definitelyBad, disconnected: id.disconnected, badCases: id.badCases })
        report.vivaldiAnswers += id.vivaldiAnswers
        await Promise.resolve(id.host.stop()).catch(() => {})
      }
    }
  }
  void rng
  await Promise.all(Array.from({ length: opts.parallel ?? 3 }, async (_, w) => { await worker(w) }))
  report.elapsedMs = Date.now() - started
  return report
}

/** Resident set size of a process in KiB (Linux /proc). */
export async function rssKiB (pid: number): Promise<number> {
  const { readFileSync } = await import('node:fs')
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

export type { PeerId }
