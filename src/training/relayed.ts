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
