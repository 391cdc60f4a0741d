// A bare overlay node for the link-cut scenario, run inside one host namespace: libp2p (TCP,
// Noise, yamux) listening on 127.0.0.1:4002 behind the host's delay relay, announcing the
// host's bridge address, plus the overlay's EnvelopeService (sealed envelopes, k paths).
// The daemon has no API to send envelopes, hence this script.
//   argv: ANNOUNCE_MULTIADDR LAT LON
//   in:  {"cmd":"dial","addr":...} | {"cmd":"send","to":...,"text":...,"k":2,"direct":false} | {"cmd":"stop"}
//   out: {"event":"ready","id":...} | {"event":"dialed"} | {"event":"message","from","text","via"}
//        {"event":"delivered","text",...receipt} | {"event":"failed","text","error"} | {"event":"relayed"}
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { EnvelopeService } from '../../src/net/overlay/envelopes.js'

const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n') }
const [announce, lat, lon] = process.argv.slice(2)
const privateKey = await generateKeyPair('Ed25519')
const node = await createLibp2p({
  privateKey,
  addresses: { listen: ['/ip4/127.0.0.1/tcp/4002'], announce: [announce] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() },
  connectionManager: { allow: ['/ip4/127.0.0.1', '/ip4/10.213.0.0/ipcidr/16'] },
  connectionMonitor: { enabled: false }
})
const svc = new EnvelopeService(node as any, {
  secretKey: privateKey.raw.subarray(0, 32),
  location: { lat: Number(lat), lon: Number(lon) },
  ackTimeoutMs: 1500,
  onMessage: m => out({ event: 'message', from: m.sender, text: new TextDecoder().decode(m.payload), via: m.via, t: Date.now() }),
  onRelay: () => out({ event: 'relayed' })
})
await svc.start()
out({ event: 'ready', id: node.peerId.toString() })

for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line) as { cmd: string, addr?: string, to?: string, text?: string, k?: number, direct?: boolean }
  if (c.cmd === 'dial') {
    await node.dial(multiaddr(c.addr!)).then(() => out({ event: 'dialed', addr: c.addr }), err => out({ event: 'dial-failed', addr: c.addr, error: String(err) }))
  } else if (c.cmd === 'send') {
    const t0 = Date.now()
    svc.send(c.to!, new TextEncoder().encode(c.text!), { k: c.k, direct: c.direct })
      .then(r => out({ event: 'delivered', text: c.text, ms: Date.now() - t0, ...r }), err => out({ event: 'failed', text: c.text, error: String(err) }))
  } else if (c.cmd === 'stop') {
    break
  }
}
await svc.stop()
await node.stop()
process.exit(0)
