// What the live fuzzer knows about each protocol a daemon may register: a table of crafters per
// /dbc/ protocol (a valid message, its frame limit, which overlay cases apply, and well-formed but
// hostile messages), and libp2p's own protocols, which get the generic garbage cases only. The
// fuzzer takes its target list from the protocols the running daemon registered; a registered
// protocol with no entry here is a coverage failure (`missingFuzzTargets`).
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { dbc } from '../../src/wire/gen/wire.js'
import { sealEnvelope, unsealedEnvelope, DEFAULT_MAX_ENVELOPE_BYTES } from '../../src/crypto/envelope.js'
import { encodeChunk, DEFAULT_CHUNK_BYTES } from '../../src/core/routing/chunker.js'
import { signAnnouncement } from '../../src/net/overlay/announce.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, toHex } from '../../src/core/identity/index.js'
import { leaseSigningBytes } from '../../src/core/scheduler/ownership.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import { TRAINING_MAX_FRAME } from '../../src/training/transport.js'
import { encodePiece } from '../../src/training/pieces.js'
import { TASK_MAX_FRAME } from '../../src/net/tasks.js'
import { ECHO_MAX_FRAME } from '../../src/net/echo.js'
import type { Rng } from '../../src/core/rng.js'
import { multiaddr } from '@multiformats/multiaddr'
import { WEBRTC_SIGNALING, SIGNALING_MAX_MESSAGE, SIGNALING_HOSTILE, SignalType, signalMessage, offerSdp } from './webrtc-signaling-target.js'

export interface CraftContext {
  rng: Rng
  id: { secret: Uint8Array, peerBytes: Uint8Array }
  /** `payout`: the node's EVM payout address (read from its offer), when the probes learned it. */
  target: { peerBytes: Uint8Array, payout?: string }
  now: number
  /** Hostile invites name a command that would create a file here: a file there means it ran. */
  markerDir?: string
}

/** A well-formed message that a hostile peer sends (bodies, not yet framed). */
export interface HostileCase {
  name: string
  craft: (c: CraftContext) => Uint8Array[]
  /** What the node must do (checked by the hostile probes and reported). */
  expect: string
  /**
   * Whether the sender must be charged: 'must'; 'no' (an honest peer may send this too);
   * 'pending' where the node does not charge for it yet (the probes report it, not assert it).
   */
  charge: 'must' | 'no' | 'pending'
  /** The node's answer must match this (e.g. an invite's refusal), when set. */
  reply?: RegExp
}

export interface DbcTarget {
  owner: 'dbc'
  /** Largest frame the node reads on this protocol (oversized prefixes go above it). */
  maxFrame: number
  valid: (c: CraftContext) => Uint8Array
  /** Signed messages: bad signatures and tampered ciphertexts apply. */
  signed?: boolean
  /** Sealed envelopes: replays apply. */
  replay?: boolean
  hostile: HostileCase[]
}
/**
 * A protocol of a library (libp2p's own, @libp2p/webrtc's): generic garbage, plus crafted messages
 * where we write them (`maxFrame`, `valid`, `hostile`). The node charges nothing on these.
 */
export interface Libp2pTarget { owner: 'libp2p', what: string, maxFrame?: number, valid?: (c: CraftContext) => Uint8Array, hostile?: HostileCase[] }
export type FuzzTargetSpec = DbcTarget | Libp2pTarget

/** Where hostile descriptors say unknown peers are: loopback's discard port, refused at once. */
const DISCARD_ADDR = multiaddr('/ip4/127.0.0.1/tcp/9').bytes
const rand = (c: CraftContext, n: number): Uint8Array => c.rng.bytes(new Uint8Array(n))
const randomPeerBytes = (c: CraftContext): Uint8Array => peerIdBytesFromEd25519Key(ed25519PublicKey(rand(c, 32)))

export function fuzzEnvelope (c: CraftContext, to: Uint8Array, tamper: 'none' | 'signature' | 'ciphertext', expiresAt = c.now + 20_000): dbc.envelope.v1.Envelope {
  const e = sealEnvelope({ senderSecretKey: c.id.secret, sender: c.id.peerBytes, recipient: to, payload: rand(c, 1 + c.rng.int(64)), expiresAt, sequence: 1, mode: c.rng.int(2) === 0 ? 'static' : 'ephemeral', random: out => c.rng.bytes(out) })
  if (tamper === 'signature') e.signature[c.rng.int(64)] ^= 1 + c.rng.int(255)
  if (tamper === 'ciphertext') e.ciphertext[c.rng.int(e.ciphertext.length)] ^= 1 + c.rng.int(255)
  return e
}
/** A sealed envelope to the target in the task application's content type, carrying `payload` (a chunk, or garbage). */
const taskEnvelope = (c: CraftContext, payload: Uint8Array): dbc.envelope.v1.Envelope => sealEnvelope({ senderSecretKey: c.id.secret, sender: c.id.peerBytes, recipient: c.target.peerBytes, payload, expiresAt: c.now + 20_000, sequence: 1, contentType: dbc.envelope.v1.ContentType.CONTENT_TASK, mode: 'static', random: out => c.rng.bytes(out) })
export const relayRequest = (e: dbc.envelope.v1.Envelope, pathId = 0, hopsLeft = 1): Uint8Array => dbc.envelope.v1.RelayRequest.encode({ envelope: e, hopsLeft, pathId }).finish()

/** /dbc/relay/1.0.0 (and, with its own cases added, 1.1.0). */
const RELAY_TARGET: DbcTarget = {
  owner: 'dbc',
  maxFrame: DEFAULT_MAX_ENVELOPE_BYTES + 64,
  valid: c => relayRequest(fuzzEnvelope(c, c.target.peerBytes, 'none')),
  signed: true,
  replay: true,
  hostile: [
    { name: 'envelope-expiring-in-ten-years', craft: c => [relayRequest(fuzzEnvelope(c, randomPeerBytes(c), 'none', c.now + 10 * 365 * 86_400_000), 0, 255)], expect: 'dropped (lifetime above the limit); sender charged', charge: 'must' },
    // the task application over envelopes (src/net/overlay/task-envelopes.ts): chunks in CONTENT_TASK envelopes
    { name: 'task-chunk-garbage', craft: c => [relayRequest(taskEnvelope(c, rand(c, 8 + c.rng.int(64))))], expect: 'acked, then refused by the task application (CHUNK_MALFORMED); sender charged', charge: 'must' },
    {
      name: 'task-chunk-16mib-without-lease',
      craft: c => [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'request', id: rand(c, 16), index: 0, count: 86, totalBytes: 86 * DEFAULT_CHUNK_BYTES, data: rand(c, DEFAULT_CHUNK_BYTES) })))],
      expect: 'refused (CHUNK_TOO_LARGE: a peer without a lease sends small requests); nothing reserved',
      charge: 'no'
    },
    { name: 'task-chunk-unasked-response', craft: c => [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'response', id: rand(c, 16), index: 0, count: 1, totalBytes: 32, data: rand(c, 32) })))], expect: 'refused (a reply to nothing asked: 0 bytes allowed)', charge: 'no' },
    // training frames over the overlay (src/training/overlay-route.ts): one-way `frame` chunks on the same application
    { name: 'training-frame-garbage', craft: c => [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'frame', id: rand(c, 16), index: 0, count: 1, totalBytes: 33, data: new Uint8Array([0x0f, ...rand(c, 32)]) })))], expect: 'acked, then refused by the training transport (TRAINING_MESSAGE_INVALID: wire type 7); sender charged', charge: 'must' },
    {
      name: 'training-frame-1mib-from-stranger',
      craft: c => [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'frame', id: rand(c, 16), index: 0, count: 6, totalBytes: 6 * DEFAULT_CHUNK_BYTES, data: rand(c, DEFAULT_CHUNK_BYTES) })))],
      expect: 'refused (CHUNK_TOO_LARGE: large training frames only from members of a job); nothing reserved',
      charge: 'no'
    },
    // a training frame above the overlay's per-peer budget crosses in pieces (src/training/pieces.ts), rebuilt at the receiver
    { name: 'training-piece-garbage', craft: c => [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'frame', id: rand(c, 16), index: 0, count: 1, totalBytes: 40, data: new Uint8Array([0x00, 0x01, ...rand(c, 16), 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) })))], expect: 'acked, then refused by the training transport (PIECE_MALFORMED: piece 9 of 2); sender charged TRAINING_MESSAGE_INVALID', charge: 'must' },
    {
      name: 'training-piece-of-a-100kib-frame-from-stranger',
      craft: c => { const piece = encodePiece({ id: rand(c, 16), index: 0, count: 64, totalBytes: 64 * 1600, data: rand(c, 1600) }); return [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'frame', id: rand(c, 16), index: 0, count: 1, totalBytes: piece.length, data: piece })))] },
      expect: 'refused (PIECE_NOT_MEMBER: a stranger\'s frames are small, its pieces reserve nothing)',
      charge: 'no'
    },
    {
      // review F3: the last place lies past the frame (3 of 4 pieces of 5 bytes, empty): refused, never thrown
      name: 'training-piece-empty-shape',
      craft: c => { const piece = encodePiece({ id: rand(c, 16), index: 3, count: 4, totalBytes: 5, data: new Uint8Array(0) }); return [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'frame', id: rand(c, 16), index: 0, count: 1, totalBytes: piece.length, data: piece })))] },
      expect: 'acked, then refused by the training transport (PIECE_MALFORMED: 4 pieces of 5 bytes leave a piece empty); sender charged TRAINING_MESSAGE_INVALID',
      charge: 'must'
    },
    {
      // review F4: within a stranger's 64 KiB, still refused: only a job's members ever need pieces
      name: 'training-piece-of-a-60kib-frame-from-stranger',
      craft: c => { const piece = encodePiece({ id: rand(c, 16), index: 0, count: 8, totalBytes: 8 * 7680, data: rand(c, 7680) }); return [relayRequest(taskEnvelope(c, encodeChunk({ kind: 'frame', id: rand(c, 16), index: 0, count: 1, totalBytes: piece.length, data: piece })))] },
      expect: 'refused (PIECE_NOT_MEMBER), nothing reserved',
      charge: 'no'
    }
  ]
}

const training = (m: dbc.training.v1.TrainingMessage.$Properties): Uint8Array => dbc.training.v1.TrainingMessage.encode(m).finish()
const task = (m: dbc.task.v1.TaskMessage.$Properties): Uint8Array => dbc.task.v1.TaskMessage.encode(m).finish()
const membership = (m: dbc.membership.v1.MembershipMessage.$Properties): Uint8Array => dbc.membership.v1.MembershipMessage.encode(m).finish()
const spec = (s: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(s))
const invite = (c: CraftContext, s: unknown): Uint8Array => training({ invite: { jobId: `fuzz-${toHex(rand(c, 8))}`, spec: spec(s), rank: 0, shards: 1 } })
/** Marker path a hostile command would create (the probes look for it afterwards). */
const marker = (c: CraftContext): string => join(c.markerDir ?? tmpdir(), `pwned-${toHex(rand(c, 6))}`)
/** Vivaldi coordinates ([x, y, height, error]) no honest peer sends. */
export const HOSTILE_COORDINATES: number[][] = [[NaN, 0, 1, 0.5], [1e308, -1e308, 1e308, 1e-308], [-Infinity, Infinity, 0, 0], [NaN, NaN, NaN, NaN]]

/** Every /dbc/ protocol a daemon registers outside libp2p's own, with its crafters. */
export const DBC_TARGETS: Record<string, DbcTarget> = {
  '/dbc/echo/1.0.0': {
    owner: 'dbc',
    maxFrame: ECHO_MAX_FRAME,
    valid: c => dbc.common.v1.Echo.encode({ payload: rand(c, 32) }).finish(),
    hostile: [
      { name: 'echo-largest-payload', craft: c => [dbc.common.v1.Echo.encode({ payload: rand(c, ECHO_MAX_FRAME - 16) }).finish()], expect: 'echoed (an honest peer may do this); no growth beyond one frame', charge: 'no', reply: /^echoed 1048560 bytes$/ }
    ]
  },
  '/dbc/task/1.0.0': {
    owner: 'dbc',
    maxFrame: TASK_MAX_FRAME,
    valid: c => task({ leaseRequest: { jobId: rand(c, 16), executor: 'wasm', slots: 1 } }),
    hostile: [
      {
        // signed by the sender as its holder and addressed to the node, but for no offer the node made
        name: 'lease-for-unknown-job',
        craft: c => {
          const lease: dbc.task.v1.ILease = { leaseId: rand(c, 16), offerId: rand(c, 16), jobId: rand(c, 16), holder: c.id.peerBytes, provider: c.target.peerBytes, expiresAt: c.now + 60_000, heartbeatMs: 1000 }
          lease.signature = nodeSigner(c.id.secret.subarray(0, 32))(leaseSigningBytes(lease)) // libp2p keeps seed + public key
          return [task({ lease })]
        },
        // not charged: an honest runner sends such a lease too when the provider restarted or evicted
        // its offer (lease requests are free, so a flood can push offers out); forged or mismatched
        // leases (another signer, provider or requester) and a second lease on one offer are charged
        expect: 'refused (no offer of this node backs it); not charged (an honest runner meets this after a provider restart)',
        charge: 'no',
        reply: /LEASE_UNKNOWN_OFFER/
      },
      {
        name: 'task-for-lease-never-opened',
        craft: c => [task({ task: { taskId: rand(c, 16), jobId: rand(c, 16), leaseId: rand(c, 16), index: 0, attempt: 1, executor: 'wasm', code: rand(c, 64), entry: 'run', input: rand(c, 8) } })],
        expect: 'refused (TASK_NO_LEASE); sender charged',
        charge: 'must',
        reply: /TASK_NO_LEASE/
      },
      {
        name: 'voucher-garbage',
        craft: c => [task({ voucher: { escrowId: rand(c, 1 + c.rng.int(31)), provider: rand(c, 3), cumulative: rand(c, 40), receiptsRoot: rand(c, 7), receiptCount: 1, signature: rand(c, 12) } })],
        expect: 'refused (VOUCHER_MALFORMED); sender charged',
        charge: 'must',
        reply: /VOUCHER_MALFORMED/
      },
      {
        // well-formed, for a payee that is not this node: no honest payer sends it here
        name: 'voucher-for-another-provider',
        craft: c => [task({ voucher: fuzzVoucher(c, toHex(rand(c, 20))) })],
        expect: 'refused (VOUCHER_WRONG_PROVIDER) before any chain read; sender charged',
        charge: 'must',
        reply: /VOUCHER_WRONG_PROVIDER/
      },
      {
        // for this node, but for a job that never ran here (a made-up job): declined before any chain
        // read or signature recovery (review L7), not charged (an honest payer's voucher for a row
        // evicted past maxJobs lands here too). A wrong signer and a lower total need a job leased
        // here: test/payment/provider-gate.test.ts and test/unit/jobs/payment-gate.test.ts send those
        // (charged; a lower total is not)
        name: 'voucher-foreign-job',
        craft: c => [task({ voucher: fuzzVoucher(c, (c.target.payout ?? '').replace(/^0x/, '')) })],
        expect: 'declined (VOUCHER_UNKNOWN_JOB) before any chain read; not charged',
        charge: 'no',
        reply: /VOUCHER_UNKNOWN_JOB/
      },
      {
        // a TaskBundle rides a lease stream only (after a lease whose offer said bundle_max > 1): as a stream's first frame it is no request
        name: 'task-bundle-outside-a-lease-stream',
        craft: c => [task({ bundle: { tasks: [0, 1].map(i => ({ taskId: rand(c, 16), jobId: rand(c, 16), leaseId: rand(c, 16), index: i, attempt: 1, executor: 'wasm', code: rand(c, 64), entry: 'run', input: rand(c, 8) })) } })],
        expect: 'refused (UNEXPECTED_MESSAGE); sender charged',
        charge: 'must',
        reply: /UNEXPECTED_MESSAGE/
      },
      {
        name: 'result-for-task-never-leased',
        craft: c => [task({ result: { taskId: rand(c, 16), jobId: rand(c, 16), attempt: 1, ok: true, output: rand(c, 8), outputHash: rand(c, 32) } })],
        expect: 'refused (UNEXPECTED_MESSAGE); sender charged',
        charge: 'must',
        reply: /UNEXPECTED_MESSAGE/
      }
    ]
  },
  '/dbc/relay/1.0.0': RELAY_TARGET,
  // the same protocol from a peer that also takes unsealed direct copies (src/crypto/envelope.ts):
  // its own cases are the unsealed copies no honest peer sends
  '/dbc/relay/1.1.0': {
    ...RELAY_TARGET,
    hostile: [
      ...RELAY_TARGET.hostile,
      {
        name: 'unsealed-copy-claiming-another-sender',
        craft: c => [relayRequest(unsealedEnvelope({ sender: randomPeerBytes(c), recipient: c.target.peerBytes, payload: rand(c, 1 + c.rng.int(64)), expiresAt: c.now + 20_000, random: out => c.rng.bytes(out) }), 0, 0)],
        expect: 'refused (forged: an unsealed copy is taken only from its sender\'s own connection); sender charged',
        charge: 'must'
      },
      {
        name: 'unsealed-copy-to-forward',
        craft: c => [relayRequest(unsealedEnvelope({ sender: c.id.peerBytes, recipient: randomPeerBytes(c), payload: rand(c, 1 + c.rng.int(64)), expiresAt: c.now + 20_000, random: out => c.rng.bytes(out) }), 0, 1)],
        expect: 'refused (malformed: relays never forward an unsealed copy); sender charged',
        charge: 'must'
      }
    ]
  },
  '/dbc/membership/1.0.0': {
    owner: 'dbc',
    maxFrame: 256 * 1024,
    valid: c => membership({ shuffleRequest: { peers: [{ peerId: c.id.peerBytes, age: 1 }] } }),
    signed: true,
    hostile: [
      {
        name: 'shuffle-256-unknown-peers',
        craft: c => [membership({ shuffleRequest: { peers: Array.from({ length: 256 }, () => ({ peerId: randomPeerBytes(c), age: 0, addrs: [DISCARD_ADDR] })) } })],
        expect: 'at most a bounded few descriptors stored; the rest dropped before the peer store; sender charged',
        charge: 'must'
      },
      {
        name: 'shuffle-hostile-vivaldi',
        craft: c => [membership({ shuffleRequest: { peers: HOSTILE_COORDINATES.map(v => ({ peerId: randomPeerBytes(c), age: 0, vivaldi: v })) } })],
        expect: 'coordinates refused (not finite / out of range); the node\'s coordinate stays finite',
        // a descriptor's coordinate is gossip the sender passes on: dropped, not held against it
        charge: 'no'
      }
    ]
  },
  '/dbc/capability/1.0.0': {
    owner: 'dbc',
    maxFrame: 16 * 1024,
    valid: () => dbc.capability.v1.CapabilityLookupRequest.encode({ query: { capability: 'gpu', want: 3 } }).finish(),
    hostile: [
      { name: 'lookup-want-everything', craft: () => [dbc.capability.v1.CapabilityLookupRequest.encode({ query: { capability: 'cpu', want: 0xffffffff, maxRing: 0xffffffff, minGpuCount: 0 } }).finish()], expect: 'a bounded answer (an honest query may ask for many)', charge: 'no', reply: /^\d{1,2} records$/ }
    ]
  },
  '/dbc/allreduce/1.0.0': {
    owner: 'dbc',
    maxFrame: TRAINING_MAX_FRAME,
    valid: c => training({ report: { jobId: `fuzz-${toHex(rand(c, 8))}`, round: 1, loss: 1, accuracy: NaN, samples: 1 } }),
    hostile: [
      {
        name: 'invite-naming-a-command',
        craft: c => [invite(c, { model: { kind: 'external', command: ['/bin/sh', '-c', `echo pwned > ${marker(c)}`] }, groupSize: 1, rounds: 1 })],
        expect: 'refused with a reason; no process started; sender charged',
        charge: 'must',
        reply: /^invite refused: .*command/
      },
      {
        name: 'invite-naming-a-missing-command',
        craft: c => [invite(c, { model: { kind: 'external', command: ['/nonexistent/dbc-fuzz-trainer'] }, groupSize: 1, rounds: 1 })],
        expect: 'refused with a reason; the node stays up; sender charged',
        charge: 'must',
        reply: /^invite refused: .*command/
      },
      {
        name: 'invite-unknown-trainer',
        craft: c => [invite(c, { model: { kind: 'external', trainer: `fuzz-${toHex(rand(c, 4))}` }, groupSize: 1, rounds: 1 })],
        expect: 'refused: no such trainer here (an honest submitter may ask a node that lacks it)',
        charge: 'no',
        reply: /^invite refused: unknown trainer/
      },
      {
        name: 'invite-1e9-parameters',
        craft: c => [invite(c, { model: { kind: 'mlp', hidden: 1e9 }, groupSize: 1, rounds: 1 })],
        expect: 'refused at validation (hidden above the limit); no allocation; sender charged',
        charge: 'must',
        reply: /^invite refused: .*hidden/
      },
      {
        name: 'slice-wrong-length-no-round',
        craft: c => [training({ slice: { jobId: `fuzz-${toHex(rand(c, 8))}`, round: 4_000_000_000, slice: 7, phase: 0, codec: 0, length: 1_000_000, data: rand(c, 12), weight: 1 } })],
        expect: 'dropped (no such job/round; length and data disagree)',
        // an honest member's slice for a round that just ended arrives late: dropped, not charged
        charge: 'no'
      }
    ]
  },
  '/dbc/vivaldi/1.0.0': {
    owner: 'dbc',
    maxFrame: 256,
    valid: () => dbc.membership.v1.VivaldiProbe.encode({ coordinate: [1, 2, 0.1, 0.5] }).finish(),
    hostile: [
      {
        name: 'probe-hostile-coordinate',
        craft: c => [dbc.membership.v1.VivaldiProbe.encode({ coordinate: HOSTILE_COORDINATES[c.rng.int(HOSTILE_COORDINATES.length)] }).finish()],
        expect: 'refused with VIVALDI_COORDINATE_INVALID; the node\'s coordinate stays finite; sender charged',
        charge: 'must'
      }
    ]
  }
}

/** libp2p's own protocols (under the node's private prefix, or libp2p's): generic garbage only. */
export const LIBP2P_TARGETS: Array<{ pattern: RegExp, what: string }> = [
  { pattern: /^\/[^/]+\/id\/1\.0\.0$/, what: 'identify' },
  { pattern: /^\/[^/]+\/id\/push\/1\.0\.0$/, what: 'identify push' },
  { pattern: /^\/[^/]+\/ping\/1\.0\.0$/, what: 'ping' },
  { pattern: /^\/[^/]+\/kad\/1\.0\.0$/, what: 'kad-dht' },
  { pattern: /^\/[^/]+\/(lan\/)?kad\/1\.0\.0$/, what: 'kad-dht (lan)' },
  { pattern: /^\/libp2p\/circuit\/relay\/0\.2\.0\/(hop|stop)$/, what: 'circuit relay v2' },
  { pattern: /^\/libp2p\/dcutr$/, what: 'dcutr' },
  { pattern: /^\/libp2p\/autonat\/[12]\.0\.0(\/.*)?$/, what: 'autonat' },
  { pattern: /^\/libp2p\/fetch\/0\.0\.1$/, what: 'fetch' }
]

/**
 * Libraries' protocols whose messages the fuzzer crafts. WebRTC signalling is registered only by a
 * node behind NAT with WebRTC on (test/fuzz/coverage.test.ts starts one; test/fuzz/webrtc-signaling.test.ts
 * drives these at it through the admission bound).
 */
export const LIBRARY_TARGETS: Record<string, Libp2pTarget> = {
  [WEBRTC_SIGNALING]: { owner: 'libp2p', what: 'WebRTC signalling (@libp2p/webrtc)', maxFrame: SIGNALING_MAX_MESSAGE, valid: c => signalMessage(SignalType.SDP_OFFER, offerSdp(c)), hostile: SIGNALING_HOSTILE }
}

/** The fuzz target for a protocol, or undefined when the fuzzer has none. */
export function fuzzTargetFor (protocol: string): FuzzTargetSpec | undefined {
  const d = DBC_TARGETS[protocol] ?? LIBRARY_TARGETS[protocol]
  if (d !== undefined) return d
  const l = LIBP2P_TARGETS.find(t => t.pattern.test(protocol))
  return l === undefined ? undefined : { owner: 'libp2p', what: l.what }
}

/** Registered protocols the fuzzer has no target for (a test fails on any). */
export function missingFuzzTargets (protocols: Iterable<string>): string[] {
  return [...new Set(protocols)].filter(p => fuzzTargetFor(p) === undefined).sort()
}

/** A voucher of the right shape for a made-up job, paying `providerHex` (40 hex digits), with a random signature. */
export function fuzzVoucher (c: CraftContext, providerHex: string): dbc.task.v1.IVoucher {
  const provider = /^[0-9a-fA-F]{40}$/.test(providerHex) ? Uint8Array.from(providerHex.match(/../g) ?? [], h => parseInt(h, 16)) : rand(c, 20)
  return { escrowId: rand(c, 32), provider, cumulative: rand(c, 1 + c.rng.int(32)), receiptsRoot: rand(c, 32), receiptCount: c.rng.int(1000), signature: rand(c, 65) }
}

/** A signed announcement whose signature was then broken (membership's bad-signature case). */
export function badAnnouncement (c: CraftContext): Uint8Array {
  const a = signAnnouncement(c.id.secret, { origin: c.id.peerBytes, id: rand(c, 16), ttl: 2, createdAt: c.now, kind: 1, body: rand(c, 32) })
  a.signature[c.rng.int(64)] ^= 1
  return membership({ announcement: a })
}
