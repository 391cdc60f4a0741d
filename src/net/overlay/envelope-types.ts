// The envelope service's public types (src/net/overlay/envelopes.ts): what a receiver gets, what a
// sender's promise resolves to, and the service's settings.
import type { dbc } from '../../wire/gen/wire.js'
import type { PeerScoreBook, Offence } from '../../core/routing/index.js'
import type { LatLon } from '../../core/geo/index.js'

export interface ReceivedMessage {
  sender: string
  messageId: string
  contentType: number
  sequence: number
  payload: Uint8Array
  /** Neighbour that handed us this copy (the sender itself, or a relay). */
  via: string
}

export interface DeliveryReceipt {
  messageId: string
  pathId: number
  via?: string
  latencyMs: number
  attempts: number
}

export interface EnvelopeServiceInit {
  /** Our Ed25519 secret key (32-byte seed or libp2p's 64-byte raw form). */
  secretKey: Uint8Array
  onMessage?: (msg: ReceivedMessage) => void
  /** Sees every envelope this node relays for others (tracing; it holds only ciphertext). */
  onRelay?: (envelope: dbc.envelope.v1.Envelope, from: string) => void
  /** Called when a neighbour is charged; `disconnect` means its score crossed the threshold. */
  onPenalty?: (peer: string, offence: Offence, score: number, disconnect: boolean) => void
  /** Where a peer is (declared location), for predicted latency and cell diversity of relays. */
  locate?: (peer: string) => LatLon | undefined
  /** Our own location. */
  location?: LatLon
  /** Peers that may relay for us; default: every peer we are connected to. */
  relayCandidates?: () => string[]
  scores?: PeerScoreBook<string>
  k?: number
  hopLimit?: number
  ackTimeoutMs?: number
  maxAttempts?: number
  ttlMs?: number
  maxEnvelopeBytes?: number
  /**
   * Key mode of envelopes we seal: 'static' (default; per-peer-pair key, cached) or 'ephemeral'
   * (fresh X25519 key per envelope: forward secrecy, ~2 scalar multiplications more per message).
   */
  mode?: 'static' | 'ephemeral'
  /**
   * Accept a static-mode envelope whose AEAD tag verifies without checking the Ed25519 signature:
   * only the sender and we hold the pair key, so the tag already proves the sender (what is lost:
   * if OUR key leaks, others could be impersonated to us). Default true. A static-mode copy the
   * sender hands us itself carries no signature (unless it sets signDirect); relayed copies are
   * signed. false: verify signatures, and take unsigned copies only from their sender's own
   * connection (an unsigned relayed copy, e.g. from an older sender, is refused, no one charged).
   */
  trustAead?: boolean
  /**
   * Sign every envelope, also the static-mode copies we hand to the recipient ourselves (default
   * false: those go unsigned; relayed copies are always signed, see src/crypto/envelope.ts). Turn
   * on where the recipient must be able to show a third party that we sent it; ~35-50 us a message.
   */
  signDirect?: boolean
  /**
   * Seal direct copies too (the design before /dbc/relay/1.1.0; default false: a direct copy to a
   * recipient that speaks 1.1.0 goes unsealed, its connection's encryption end to end to the
   * recipient standing for the seal; see src/crypto/envelope.ts). Relayed copies are always sealed.
   */
  sealDirect?: boolean
  /** Close connections to peers whose score crosses the threshold (default true). */
  disconnectBadPeers?: boolean
  random?: (out: Uint8Array) => Uint8Array
  now?: () => number
}

export interface SendOptions {
  k?: number
  /** Use the direct path when possible (default true); false forces relays only. */
  direct?: boolean
  contentType?: number
  ttlMs?: number
  sequence?: number
  signal?: AbortSignal
}
