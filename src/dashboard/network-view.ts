// GET /v1/dashboard/network: what the Network page draws. This node, its connected peers and the
// peers it knows of (gossip, capability records) at their declared locations, or placed by
// Vivaldi beside the located node their coordinate is closest to; each with its measured RTT.
import { peerIdFromString } from '@libp2p/peer-id'
import { predictRtt, type VivaldiCoordinate } from '../core/geo/index.js'
import { toHex } from '../core/identity/index.js'
import type { Overlay } from '../net/overlay/index.js'
import type { Host } from '../net/host.js'
import type { Location } from '../node/daemon.js'
import { nearestCity } from './cities.js'

export interface MapPeer {
  peerId: string
  lat: number
  lon: number
  city: string | null
  /** declared: the peer's own signed location; vivaldi: placed by its network coordinate. */
  placement: 'declared' | 'vivaldi'
  connected: boolean
  /** It published a capability record (it offers compute). */
  provider: boolean
  measuredRttMs: number | null
  predictedRttMs: number | null
  executors: string[]
  gpus: string[]
}

export interface NetworkView {
  self: { peerId: string, lat: number | null, lon: number | null, city: string | null }
  peers: MapPeer[]
  /** Connected peers the map cannot place (no location, no usable coordinate). */
  unplaced: Array<{ peerId: string, measuredRttMs: number | null }>
  routingTable: number
  membershipView: number
  knownPeers: number
  connections: number
}

export function networkView (host: Host, overlay: Overlay | undefined, self: Location | undefined): NetworkView {
  const now = Date.now()
  const connected = new Set(host.getPeers().map(String))
  const selfId = host.peerId.toString()
  const placedCoords: Array<{ lat: number, lon: number, vivaldi?: VivaldiCoordinate }> = []
  if (self !== undefined) placedCoords.push({ lat: self.lat, lon: self.lon, vivaldi: overlay?.coordinate })
  const ids = new Set<string>([...connected, ...(overlay?.known.keys() ?? [])])
  ids.delete(selfId)
  const peers: MapPeer[] = []
  const pending: string[] = []
  const unplaced: NetworkView['unplaced'] = []
  const recordOf = (peer: string): { latE4: number, lonE4: number, executors: string[], gpus: Array<{ model?: string | null, count?: number | null }> } | undefined => {
    if (overlay === undefined) return undefined
    try { return overlay.capabilities.cache.get(now, toHex(peerIdFromString(peer).toMultihash().bytes))?.record as any } catch { return undefined }
  }
  const base = (peer: string): Omit<MapPeer, 'lat' | 'lon' | 'city' | 'placement'> => {
    const k = overlay?.known.get(peer)
    const rec = recordOf(peer)
    const e = overlay?.estimate(peer)
    return {
      peerId: peer,
      connected: connected.has(peer),
      provider: rec !== undefined,
      measuredRttMs: k?.measuredRttMs ?? null,
      predictedRttMs: e?.predictedRttMs ?? null,
      executors: rec?.executors ?? [],
      gpus: (rec?.gpus ?? []).map(g => `${g.count ?? 0}x${g.model ?? '?'}`)
    }
  }
  for (const peer of ids) {
    const k = overlay?.known.get(peer)
    const rec = recordOf(peer)
    const loc = k?.location ?? (rec !== undefined ? { lat: rec.latE4 / 1e4, lon: rec.lonE4 / 1e4 } : undefined)
    if (loc === undefined) { pending.push(peer); continue }
    placedCoords.push({ lat: loc.lat, lon: loc.lon, vivaldi: k?.vivaldi })
    peers.push({ ...base(peer), lat: loc.lat, lon: loc.lon, city: nearestCity(loc.lat, loc.lon) ?? null, placement: 'declared' })
  }
  // no declared location: beside the located node whose coordinate predicts the lowest RTT to it
  for (const peer of pending) {
    const v = overlay?.known.get(peer)?.vivaldi
    let best: { lat: number, lon: number } | undefined
    let bestMs = Infinity
    if (v !== undefined) {
      for (const c of placedCoords) {
        if (c.vivaldi === undefined) continue
        const ms = predictRtt(v, c.vivaldi)
        if (ms < bestMs) { bestMs = ms; best = c }
      }
    }
    const b = base(peer)
    if (best === undefined) {
      if (b.connected) unplaced.push({ peerId: peer, measuredRttMs: b.measuredRttMs })
      continue
    }
    peers.push({ ...b, lat: best.lat, lon: best.lon, city: nearestCity(best.lat, best.lon) ?? null, placement: 'vivaldi' })
  }
  peers.sort((a, b) => Number(b.connected) - Number(a.connected) || a.peerId.localeCompare(b.peerId))
  const dht = (host.services.dht as unknown as { routingTable?: { size?: number } }).routingTable
  return {
    self: { peerId: selfId, lat: self?.lat ?? null, lon: self?.lon ?? null, city: self !== undefined ? (nearestCity(self.lat, self.lon) ?? self.name ?? null) : null },
    peers,
    unplaced,
    routingTable: dht?.size ?? 0,
    membershipView: overlay?.membership.peers().length ?? 0,
    knownPeers: overlay?.known.size ?? 0,
    connections: host.getConnections().length
  }
}
