// The libp2p peer store has no size limit, and DHT answers, gossip descriptors and random walks
// all add to it. This keeps a bounded LRU of the peers we learned about but are not connected
// to, and deletes the least recently updated ones from the peer store past the cap.
import type { Libp2p, PeerId } from '@libp2p/interface'

type CapHost = Pick<Libp2p, 'addEventListener' | 'removeEventListener' | 'getConnections' | 'peerStore' | 'peerId'>

export class PeerStoreCap {
  private readonly lru = new Map<string, PeerId>()
  private readonly deleting = new Set<string>()
  trimmed = 0

  constructor (private readonly host: CapHost, readonly max: number) {}

  start (): void {
    this.host.addEventListener('peer:update', this.onUpdate)
    this.host.addEventListener('peer:connect', this.onConnect)
    this.host.addEventListener('peer:disconnect', this.onDisconnect)
  }

  stop (): void {
    this.host.removeEventListener('peer:update', this.onUpdate)
    this.host.removeEventListener('peer:connect', this.onConnect)
    this.host.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  /** Unconnected peers tracked now. */
  get size (): number { return this.lru.size }

  private readonly onUpdate = (evt: CustomEvent<{ peer: { id: PeerId } }>): void => {
    this.touch(evt.detail.peer.id)
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => { this.lru.delete(evt.detail.toString()) }
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => { this.touch(evt.detail) }

  /** Records that `id` is in the peer store; trims the oldest unconnected peers past the cap. */
  touch (id: PeerId): void {
    const key = id.toString()
    if (this.deleting.has(key) || id.equals(this.host.peerId)) return
    if (this.host.getConnections(id).length > 0) { this.lru.delete(key); return }
    this.lru.delete(key)
    this.lru.set(key, id)
    while (this.lru.size > this.max) {
      const [oldKey, oldId] = this.lru.entries().next().value as [string, PeerId]
      this.lru.delete(oldKey)
      if (this.host.getConnections(oldId).length > 0) continue
      this.deleting.add(oldKey)
      this.trimmed++
      void this.host.peerStore.delete(oldId).catch(() => {}).finally(() => { this.deleting.delete(oldKey) })
    }
  }
}
