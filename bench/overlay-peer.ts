// A node in its own process for the overlay bench's multi-process rows (bench/overlay.ts): libp2p
// on 127.0.0.1 with an EnvelopeService and the plain stream echo, driven by JSON lines on stdin.
//   in:  {"cmd":"dial","addr":...} | {"cmd":"stop"}
//   out: {"event":"ready","id":...,"addr":...} | {"event":"dialed"} | {"event":"dial-failed","error":...}
// It relays envelopes for others and acks those addressed to it, like any daemon.
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { startNode } from '../test/integration/overlay/nodes.js'
import { EnvelopeService } from '../src/net/overlay/envelopes.js'
import { registerPlainEcho } from './plain-echo.js'
import { installLibp2pPatches } from '../src/net/libp2p-patches.js'

const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n') }
installLibp2pPatches() // the daemon's libp2p fixes, as in the bench process (bench/overlay.ts)
const n = await startNode()
const svc = new EnvelopeService(n.node, { secretKey: n.secretKey, ackTimeoutMs: 1000 })
await svc.start()
await registerPlainEcho(n.node)
out({ event: 'ready', id: n.id, addr: n.node.getMultiaddrs()[0].toString() })
for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line) as { cmd: string, addr?: string }
  if (c.cmd === 'dial') {
    await n.node.dial(multiaddr(c.addr ?? '')).then(() => { out({ event: 'dialed' }) }, err => { out({ event: 'dial-failed', error: String(err) }) })
  } else if (c.cmd === 'stop') {
    break
  }
}
await svc.stop()
await n.node.stop()
process.exit(0)
