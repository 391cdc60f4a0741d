// In-process libp2p nodes on 127.0.0.1 for the overlay's integration tests: TCP, Noise, yamux,
// no connection monitor (many nodes in one process), loopback exempt from dial limits.
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@libp2p/yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'

export interface TestNode { node: Libp2p, secretKey: Uint8Array, id: string }

export async function startNode (): Promise<TestNode> {
  const privateKey = await generateKeyPair('Ed25519')
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.1'] },
    connectionMonitor: { enabled: false }
  })
  return { node, secretKey: privateKey.raw.subarray(0, 32), id: node.peerId.toString() }
}

export async function connect (a: TestNode, b: TestNode): Promise<void> {
  await a.node.dial(b.node.getMultiaddrs()[0])
}
