// The ids of the relay protocol (src/net/overlay/envelopes.ts sends, relay-inbound.ts serves) and
// which connections may carry the unsealed direct copies that 1.1.0 adds.
export const RELAY_PROTOCOL = '/dbc/relay/1.0.0'
/**
 * The same protocol, from a peer that also takes unsealed direct copies (src/crypto/envelope.ts):
 * a sender offers it first on its stream to each neighbour and sends a recipient its direct copies
 * unsealed only once that stream negotiated it; an older peer answers 1.0.0 and gets sealed ones.
 */
export const RELAY_PROTOCOL_UNSEALED = '/dbc/relay/1.1.0'
/** What a node serves and a sender offers, in order of preference. */
export const RELAY_PROTOCOLS = [RELAY_PROTOCOL_UNSEALED, RELAY_PROTOCOL]

/**
 * Connection encryptions that seal a copy end to end to the connection's remote peer and prove that
 * peer: Noise, and 'native' (libp2p skips its own encryption where the transport encrypts: WebRTC's
 * DTLS, its fingerprints exchanged on a Noise connection). Unsealed copies ride only these: a
 * plaintext or unknown encrypter gets sealed ones and has unsealed ones refused.
 */
export function sealsEndToEnd (encryption: string | undefined): boolean {
  return encryption === '/noise' || encryption === 'native'
}
