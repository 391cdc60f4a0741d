// DHT-enabled in-process hosts (the daemon's own host factory) for capability index tests and the bench.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../../src/net/host.js'

export interface DhtNode { host: Host, secretKey: Uint8Array, id: string }

export async function startDhtNodes (n: number, opts: { links?: number } = {}): Promise<DhtNode[]> {
  const nodes: DhtNode[] = []
  const links = opts.links ?? 3
  for (let i = 0; i < n; i++) {
    const privateKey = await generateKeyPair('Ed25519')
    const host = await createHost({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, keepPrivateAddresses: true, connectionMonitor: false })
    const node = { host, secretKey: privateKey.raw.subarray(0, 32), id: host.peerId.toString() }
    // one at a time, each dialling a few earlier nodes (many at once starve the event loop)
    const targets = new Set<number>()
    for (let k = 0; k < Math.min(links, i); k++) targets.add(k === 0 ? i - 1 : Math.floor(Math.random() * i))
    for (const t of targets) await host.dial(nodes[t].host.getMultiaddrs()[0]).catch(() => {})
    nodes.push(node)
  }
  return nodes
}

export async function stopDhtNodes (nodes: DhtNode[]): Promise<void> {
  for (const n of nodes) await n.host.stop()
}
