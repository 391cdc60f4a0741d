// Peer id text <-> identity-multihash bytes, cached: base58 costs ~5 us each way and the same
// peers repeat on every message and gossip item. Both throw on malformed input (only successes
// are cached); the returned bytes are shared and must not be modified.
import { peerIdFromString, peerIdFromMultihash } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import * as Digest from 'multiformats/hashes/digest'

const PEER_CACHE_MAX = 4096
const textOfBytes = new Map<string, string>()
const bytesOfText = new Map<string, Uint8Array>()
const objectOfText = new Map<string, PeerId>()

function remember<K, V> (m: Map<K, V>, k: K, v: V): V {
  if (m.size >= PEER_CACHE_MAX) m.delete(m.keys().next().value as K)
  m.set(k, v)
  return v
}

/** The text form of a peer id given as its multihash bytes. */
export function peerIdTextOf (b: Uint8Array): string {
  const k = Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')
  return textOfBytes.get(k) ?? remember(textOfBytes, k, peerIdFromMultihash(Digest.decode(b)).toString())
}

/** The multihash bytes of a peer id given as text. */
export function peerIdBytesOf (s: string): Uint8Array {
  return bytesOfText.get(s) ?? remember(bytesOfText, s, peerIdFromString(s).toMultihash().bytes)
}

/** The PeerId object of a peer id given as text (a relay looks the recipient up on every copy it forwards). */
export function peerIdObjectOf (s: string): PeerId {
  return objectOfText.get(s) ?? remember(objectOfText, s, peerIdFromString(s))
}
