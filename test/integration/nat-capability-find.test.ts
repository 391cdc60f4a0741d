// A provider behind a strict NAT (a DHT client, reachable only through its relay) is found by a
// capability query from a peer that is not its relay (helper user16 #6: `dbc find executor:wasm`
// from Frankfurt missed the NATed peer, from the relay it did not). The DHT handed the querier the
// provider and its relayed address, but the record fetch (/dbc/capability/1.0.0) was refused on the
// relayed (limited) connection, so the provider was dropped without a word.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { strictNatGater } from '../../src/net/routes/private-peers.js'
import { CapabilityIndex } from '../../src/net/overlay/capability-index.js'

const hosts: Host[] = []
const indexes: CapabilityIndex[] = []

async function node (opts: Partial<Parameters<typeof createHost>[0]> = {}): Promise<{ host: Host, index: CapabilityIndex }> {
  const privateKey = await generateKeyPair('Ed25519')
  const host = await createHost({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], keepPrivateAddresses: true, connectionMonitor: false, ...opts })
  hosts.push(host)
  const index = new CapabilityIndex(host, { secretKey: privateKey.raw.subarray(0, 32), location: { lat: 50.11, lon: 8.68 } })
  await index.start()
  indexes.push(index)
  return { host, index }
}

async function until (what: string, f: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

test('a strict NATed provider is found by a querier that reaches it only through its relay', async () => {
  const relay = await node()
  const boot = [relay.host.getMultiaddrs()[0].toString()]
  const natted = await node({
    listenViaRelay: true, announceRelayedOnly: true, relayServer: false, dhtServer: false, bootstrap: boot,
    connectionGater: strictNatGater({}, p => p === relay.host.peerId.toString())
  })
  await until('the NATed node\'s reservation', () => natted.host.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit')))
  const querier = await node({ relayServer: false, bootstrap: boot })
  await until('the querier in the relay\'s routing table', () => relay.host.getPeers().some(p => p.equals(querier.host.peerId)))
  // Virginia, ZA (user16's "Virginia"), 8,881 km from Frankfurt
  await natted.index.publish({ cpuCores: 2, memoryMib: 2048, lat: -28.10391, lon: 26.86593, executors: ['wasm'], ttlMs: 600_000 })
  const report = await querier.index.query({ capability: 'executor:wasm', want: 32 }, { fresh: true })
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
  const found = report.results.map(r => hex(r.record.peerId))
  assert.ok(found.includes(hex(natted.host.peerId.toMultihash().bytes)), `the NATed provider was found (${report.results.length} results, ${report.fetched} fetched, ${report.lookups} lookups)`)
  const conns = querier.host.getConnections(natted.host.peerId)
  assert.ok(conns.length > 0 && conns.every(c => c.remoteAddr.toString().includes('/p2p-circuit')), `its record came over the relayed connection only: ${conns.map(c => c.remoteAddr.toString()).join(' ')}`)
})

test.after(async () => {
  for (const i of indexes) await i.stop()
  await Promise.all(hosts.map(async h => { await h.stop() }))
})

test.run()
