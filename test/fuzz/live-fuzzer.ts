// A live-node fuzzer: from this process, libp2p hosts with throw-away identities send malformed
// frames at every dbc protocol of a running daemon (random bytes, bodies that do not decode,
// truncations, oversized length prefixes, messages of the wrong type, envelopes with bad
// signatures or tampered ciphertext, replays of valid envelopes). An identity is retired once
// the node disconnects or refuses it, or after its share of frames; a fresh one takes over.
// Shared by the quick test (a few thousand frames) and the long one (100,000).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { createHost, type Host } from '../../src/net/host.js'
import { encodeFrame, encodeFramePrefix } from '../../src/wire/frame.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { sealEnvelope } from '../../src/crypto/envelope.js'
import { signAnnouncement } from '../../src/net/overlay/announce.js'
import { createRng, type Rng } from '../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../src/core/identity/index.js'

export const FUZZ_PROTOCOLS = ['/dbc/echo/1.0.0', '/dbc/task/1.0.0', '/dbc/relay/1.0.0', '/dbc/membership/1.0.0', '/dbc/capability/1.0.0'] as const
export type FuzzProtocol = typeof FUZZ_PROTOCOLS[number]
export const FUZZ_CASES = ['random-bytes', 'garbage-body', 'truncated', 'oversized', 'wrong-type', 'bad-signature', 'tampered', 'replay'] as const
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
  /** Frames that break the protocol whatever the bytes drawn (oversized, truncated, tampered). */
  definitelyBad: number
}

export async function newIdentity (): Promise<FuzzIdentity> {
  const key = await generateKeyPair('Ed25519')
  const host = await createHost({ privateKey: key, listen: [], connectionMonitor: false, dhtServer: false })
  const id: FuzzIdentity = { host, peerId: host.peerId.toString(), secret: key.raw, peerBytes: host.peerId.toMultihash().bytes, disconnected: false, frames: 0, definitelyBad: 0 }
  host.addEventListener('peer:disconnect', () => { id.disconnected = true })
  return id
}

/**
 * Bytes to send on one stream for (protocol, case), how many frames they hold, and how many
 * distinct envelopes in them the node may legitimately deliver (`deliverable`): a replayed valid
 * envelope counts once, and so does a static-mode envelope to the node whose signature alone was
 * broken (by design the node trusts the pair key's AEAD tag there: `trustAead`).
 */
export function craft (rng: Rng, id: FuzzIdentity, target: { peerBytes: Uint8Array }, protocol: FuzzProtocol, kase: FuzzCase, now: number): { bytes: Uint8Array[], frames: number, deliverable?: number } {
  const rand = (n: number): Uint8Array => rng.bytes(new Uint8Array(n))
  const envelope = (to: Uint8Array, tamper: 'none' | 'signature' | 'ciphertext'): dbc.envelope.v1.Envelope => {
    const e = sealEnvelope({ senderSecretKey: id.secret, sender: id.peerBytes, recipient: to, payload: rand(1 + rng.int(64)), expiresAt: now + 20_000, sequence: 1, mode: rng.int(2) === 0 ? 'static' : 'ephemeral', random: out => rng.bytes(out) })
    if (tamper === 'signature') e.signature[rng.int(64)] ^= 1 + rng.int(255)
    if (tamper === 'ciphertext') e.ciphertext[rng.int(e.ciphertext.length)] ^= 1 + rng.int(255)
    return e
  }
  const relay = (e: dbc.envelope.v1.Envelope, pathId = 0): Uint8Array => dbc.envelope.v1.RelayRequest.encode({ envelope: e, hopsLeft: 1, pathId }).finish()
  // a valid message of the protocol (used for truncation) and one of another protocol (wrong type)
  const valid = (): Uint8Array => {
    switch (protocol) {
      case '/dbc/echo/1.0.0': return dbc.common.v1.Echo.encode({ payload: rand(32) }).finish()
      case '/dbc/task/1.0.0': return dbc.task.v1.TaskMessage.encode({ leaseRequest: { jobId: rand(16), executor: 'wasm', tasks: 1 } as any }).finish()
      case '/dbc/relay/1.0.0': return relay(envelope(target.peerBytes, 'none'))
      case '/dbc/membership/1.0.0': return dbc.membership.v1.MembershipMessage.encode({ shuffleRequest: { peers: [{ peerId: id.peerBytes, age: 1 }] } }).finish()
      case '/dbc/capability/1.0.0': return dbc.capability.v1.CapabilityLookupRequest.encode({ query: { capability: 'gpu', want: 3 } }).finish()
    }
  }
  switch (kase) {
    case 'random-bytes': return { bytes: [rand(1 + rng.int(2048))], frames: 1 }
    case 'garbage-body': {
      // well-framed bodies that are not the protocol's message (0xff... is an invalid tag/wire type)
      const n = 1 + rng.int(8)
      return { bytes: Array.from({ length: n }, () => encodeFrame(new Uint8Array([0x0f + rng.int(2) * 0xf0, ...rand(rng.int(200))]))), frames: n }
    }
    case 'truncated': {
      const v = valid()
      const full = encodeFrame(v)
      return { bytes: [full.subarray(0, 1 + rng.int(full.length - 1))], frames: 1 }
    }
    case 'oversized': return { bytes: [encodeFramePrefix(64 * 1024 * 1024 + rng.int(1 << 30)), rand(rng.int(512))], frames: 1 }
    case 'wrong-type': {
      const others = [
        dbc.task.v1.TaskMessage.encode({ heartbeat: { leaseId: rand(16), at: now } }).finish(),
        dbc.settlement.v1.SettlementBatch.encode({ jobId: rand(32) } as any).finish(),
        dbc.training.v1.TrainingMessage.encode({} as any).finish(),
        dbc.envelope.v1.Ack.encode({ messageId: rand(16), pathId: 3, status: 1 }).finish(),
        dbc.task.v1.TaskMessage.encode({}).finish() // empty: decodes as anything, means nothing
      ]
      return { bytes: [encodeFrame(others[rng.int(others.length)])], frames: 1 }
    }
    case 'bad-signature':
    case 'tampered': {
      const tamper = kase === 'bad-signature' ? 'signature' : 'ciphertext'
      if (protocol === '/dbc/membership/1.0.0') {
        const a = signAnnouncement(id.secret, { origin: id.peerBytes, id: rand(16), ttl: 2, createdAt: now, kind: 1, body: rand(32) })
        a.signature[rng.int(64)] ^= 1
        return { bytes: [encodeFrame(dbc.membership.v1.MembershipMessage.encode({ announcement: a }).finish())], frames: 1 }
      }
      // to the node itself, or through it to a random (unreachable) peer: a relay must check too
      const toNode = rng.int(2) === 0
      const to = toNode ? target.peerBytes : peerIdBytesFromEd25519Key(ed25519PublicKey(rand(32)))
      const e = envelope(to, tamper)
      const deliverable = toNode && tamper === 'signature' && e.ephemeralKey.length === 0 ? 1 : 0
      return { bytes: [encodeFrame(relay(e))], frames: 1, deliverable }
    }
    case 'replay': {
      // one valid envelope to the node, then the same envelope again on other paths
      const e = envelope(target.peerBytes, 'none')
      const n = 2 + rng.int(4)
      return { bytes: Array.from({ length: n }, (_, i) => encodeFrame(relay(e, i))), frames: n, deliverable: 1 }
    }
  }
}

/** Which protocols a case is sent to (signatures and replays only mean something on the overlay). */
function protocolsFor (kase: FuzzCase): readonly FuzzProtocol[] {
  if (kase === 'bad-signature' || kase === 'tampered') return ['/dbc/relay/1.0.0', '/dbc/membership/1.0.0']
  if (kase === 'replay') return ['/dbc/relay/1.0.0']
  return FUZZ_PROTOCOLS
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
  onProgress?: (framesSent: number) => void
  signal?: AbortSignal
}

export interface FuzzRunReport {
  framesSent: number
  streams: number
  /** Streams the node refused to open (protocol negotiation or dial failed: e.g. we were banned). */
  refusedStreams: number
  identities: Array<{ peerId: string, frames: number, definitelyBad: number, disconnected: boolean }>
  /** Distinct envelopes the node may deliver (see craft); the node must count each at most once. */
  validEnvelopes: number
  byCase: Record<string, number>
  elapsedMs: number
}

async function sendStream (id: FuzzIdentity, target: Multiaddr, protocol: string, chunks: Uint8Array[]): Promise<boolean> {
  let stream
  try {
    stream = await id.host.dialProtocol(target, protocol, { signal: AbortSignal.timeout(5000) })
  } catch {
    return false
  }
  try {
    for (const c of chunks) {
      if (!stream.send(c)) await stream.onDrain({ signal: AbortSignal.timeout(5000) })
    }
    await stream.close({ signal: AbortSignal.timeout(3000) })
  } catch {
    stream.abort(new Error('fuzz stream done'))
  }
  return true
}

export async function runFuzz (opts: FuzzRunOptions): Promise<FuzzRunReport> {
  const rng = createRng(opts.seed ?? 1)
  const target = multiaddr(opts.target.addr)
  const targetBytes = (await import('@libp2p/peer-id')).peerIdFromString(opts.target.peerId).toMultihash().bytes
  const report: FuzzRunReport = { framesSent: 0, streams: 0, refusedStreams: 0, identities: [], validEnvelopes: 0, byCase: {}, elapsedMs: 0 }
  const started = Date.now()
  const perIdentity = opts.framesPerIdentity ?? 400
  const streamsAtOnce = opts.streamsPerIdentity ?? 8
  const worker = async (w: number): Promise<void> => {
    const wrng = createRng((opts.seed ?? 1) * 1000 + w)
    while (report.framesSent < opts.frames && opts.signal?.aborted !== true) {
      const id = await newIdentity()
      try {
        let refusedInARow = 0
        const lane = async (): Promise<void> => {
          while (report.framesSent < opts.frames && id.frames < perIdentity && !id.disconnected && refusedInARow < 3 && opts.signal?.aborted !== true) {
            const kase = FUZZ_CASES[wrng.int(FUZZ_CASES.length)]
            const protos = protocolsFor(kase)
            const protocol = protos[wrng.int(protos.length)]
            const { bytes, frames, deliverable } = craft(wrng, id, { peerBytes: targetBytes }, protocol, kase, Date.now())
            const ok = await sendStream(id, target, protocol, bytes)
            report.streams++
            if (!ok) { report.refusedStreams++; refusedInARow++; continue }
            refusedInARow = 0
            id.frames += frames
            // random bytes or a wrong-type message can happen to decode as a valid (harmless)
            // message, since protobuf skips unknown fields; these three never can
            if (kase === 'oversized' || kase === 'truncated' || kase === 'tampered') id.definitelyBad++
            report.framesSent += frames
            report.byCase[kase] = (report.byCase[kase] ?? 0) + frames
            report.validEnvelopes += deliverable ?? 0
            opts.onProgress?.(report.framesSent)
          }
        }
        await Promise.all(Array.from({ length: streamsAtOnce }, async () => { await lane() }))
      } finally {
        report.identities.push({ peerId: id.peerId, frames: id.frames, definitelyBad: id.definitelyBad, disconnected: id.disconnected })
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
