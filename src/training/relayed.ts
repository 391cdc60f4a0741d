// Relayed (circuit-relay-v2, limited) connections of the all-reduce: how old one may get before
// it is replaced, and closing the used-up ones it moved away from.
import type { Connection, Stream } from '@libp2p/interface'
import { limitBytesLeft } from '../net/routes/index.js'
import { RELAY_DURATION_LIMIT_MS } from '../net/host.js'

/**
 * A relayed connection this old is replaced before the next frame: our relays cut one at
 * RELAY_DURATION_LIMIT_MS (and the client reads the limit the relay sends in the wrong unit, so
 * `limits.seconds` cannot be used). Another relay's shorter limit shows as a failed write.
 */
export const RELAYED_MAX_AGE_MS = RELAY_DURATION_LIMIT_MS - 60_000

/**
 * Closes a relayed connection that carries no stream while another connection to the same peer
 * is open: each relay sets up few circuits per peer (RELAY_STREAMS in src/net/host.ts), and the
 * used-up ones the all-reduce moved away from would otherwise hold them.
 */
export function closeIfRedundant (host: { getConnections: (peer: Connection['remotePeer']) => Connection[] }, conn: Connection, ending?: Stream, spentBelow?: number): void {
  if (spentBelow !== undefined && (limitBytesLeft(conn) ?? Infinity) >= spentBelow && Date.now() - conn.timeline.open <= RELAYED_MAX_AGE_MS) return
  // a DCUtR attempt (one per relayed connection, futile on private addresses) holds no data of ours
  if (conn.limits === undefined || conn.status !== 'open' || conn.streams.some(s => s !== ending && s.status === 'open' && s.protocol !== '/libp2p/dcutr')) return
  if (!host.getConnections(conn.remotePeer).some(c => c !== conn && c.status === 'open')) return
  void conn.close().catch(() => {})
}

/** Streams a connection waits on before closeWhenIdle looks again (each watched once). */
const watched = new WeakSet<Stream>()

/**
 * Closes a relayed connection once it carries no stream (a DCUtR attempt aside): at once when
 * idle (true), else when the last of its streams closes, so two members whose jobs end at the
 * same time, each still seeing the other's stream, do not both leave it open. A stream that
 * opens meanwhile (another protocol, the overlay) is waited on too, while `stillWanted` holds
 * (a new job with the peer takes its connections back). For connections the all-reduce opened or
 * wrote on, at the end of the last job with their peer.
 */
export function closeWhenIdle (conn: Connection, stillWanted: () => boolean = () => true): boolean {
  if (conn.limits === undefined || conn.status !== 'open' || !stillWanted()) return false
  const busy = conn.streams.filter(s => s.status === 'open' && s.protocol !== '/libp2p/dcutr')
  if (busy.length === 0) { void conn.close().catch(() => {}); return true }
  for (const s of busy) {
    if (watched.has(s) || typeof s.addEventListener !== 'function') continue
    watched.add(s)
    s.addEventListener('close', () => { closeWhenIdle(conn, stillWanted) }, { once: true })
  }
  return false
}
