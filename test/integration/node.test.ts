// Real daemons in separate processes on 127.0.0.1, driven through the real `dbc` command.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'node:http'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { Sandbox, dbc, dbcAsync } from '../helpers/cli.js'
import { waitUntil } from '../helpers/wait.js'
import { ApiClient } from '../../src/api/client.js'
import { createHost } from '../../src/net/host.js'
import { ECHO_PROTOCOL, EchoClient } from '../../src/net/echo.js'
import { encodeFramePrefix } from '../../src/wire/frame.js'

const sb = new Sandbox()
let a: { dataDir: string, peerId: string, addrs: string[] }
let b: typeof a
let c: typeof a

// waits poll the control API (one `dbc` process per poll would keep a loaded box busy); what is
// asserted once the wait ends goes through the real `dbc` command
async function apiPeersOf (dataDir: string): Promise<string[]> {
  return (await ApiClient.connect(dataDir).call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers', undefined, { timeoutMs: 10_000 })).peers.map(p => p.peerId)
}

function peersOf (dataDir: string): string[] {
  const r = dbc(['--data-dir', dataDir, 'peers', '--json'])
  assert.is(r.code, 0, r.stderr)
  return (JSON.parse(r.stdout) as { peers: Array<{ peerId: string }> }).peers.map(p => p.peerId)
}

test('the CLI fails clearly when no node runs', () => {
  const dir = sb.dataDir('nobody')
  for (const args of [['node', 'status'], ['peers'], ['ping', '12D3KooWJcyqXWNDJECwP2MsFycCp95Gd3oJ82ozBd3ZtFGH26S4'], ['node', 'stop']]) {
    const r = dbc(['--data-dir', dir, ...args])
    assert.is(r.code, 1, args.join(' '))
    assert.match(r.stderr, /no dbc node is running with data dir/)
    assert.match(r.stderr, /hint: start one with `dbc node start`/)
    assert.not.match(r.stderr, /at .*\.ts:\d+/) // no stack trace
  }
})

test('a bad config value exits 2 and names the key', () => {
  const dir = sb.dataDir('badconfig')
  let r = dbc(['--data-dir', dir, 'node', 'start', '--api-port', '99999'])
  assert.is(r.code, 2)
  assert.match(r.stderr, /config "api\.port"/)
  r = dbc(['--data-dir', dir, 'node', 'start', '--location', 'Qzxqzx Vvqq'], {})
  assert.is(r.code, 2)
  assert.match(r.stderr, /config "location"/)
  r = dbc(['--data-dir', dir, 'node', 'start'], { env: { DBC_LISTEN: '/ip4/127.0.0.1/udp/x' } })
  assert.is(r.code, 2)
  assert.match(r.stderr, /config "listen\.0"/)
})

test('three daemons find each other through bootstrap + DHT', async () => {
  a = await sb.startNode('a', ['--location', '35.68,139.69', '--listen', '/ip6/::1/tcp/0'])
  assert.ok(a.addrs.some(x => x.startsWith('/ip6/::1/tcp/')), 'listens on IPv6 too: ' + a.addrs.join(' '))
  assert.ok(a.addrs.some(x => x.startsWith('/ip4/127.0.0.1/tcp/')))
  const boot = a.addrs[0]
  ;[b, c] = await Promise.all([sb.startNode('b', ['--bootstrap', boot]), sb.startNode('c', ['--bootstrap', boot])])
  const allListed = (pa: string[], pb: string[], pc: string[]): boolean =>
    pa.includes(b.peerId) && pa.includes(c.peerId) && pb.includes(a.peerId) && pb.includes(c.peerId) && pc.includes(a.peerId) && pc.includes(b.peerId)
  await waitUntil('every node to list the other two', async () => allListed(await apiPeersOf(a.dataDir), await apiPeersOf(b.dataDir), await apiPeersOf(c.dataDir)), { ms: 30_000, everyMs: 250 })
  assert.ok(allListed(peersOf(a.dataDir), peersOf(b.dataDir), peersOf(c.dataDir)), '`dbc peers` on every node lists the other two')
  const st = JSON.parse(dbc(['--data-dir', b.dataDir, 'node', 'status', '--json']).stdout)
  assert.is(st.peerId, b.peerId)
  assert.ok(st.dht.routingTable >= 2, `routing table has ${String(st.dht.routingTable)}`)
  const human = dbc(['--data-dir', c.dataDir, 'peers'])
  assert.match(human.stdout, new RegExp(b.peerId))
  const ping = dbc(['--data-dir', c.dataDir, 'ping', b.peerId, '--count', '2', '--json'])
  assert.is(ping.code, 0, ping.stderr)
  assert.is(JSON.parse(ping.stdout).rtts.length, 2)
})

test('the control API refuses a wrong token', async () => {
  const info = JSON.parse(readFileSync(join(a.dataDir, 'api.json'), 'utf8'))
  const status = await new Promise<number>((resolve, reject) => {
    request({ host: '127.0.0.1', port: info.port, path: '/v1/status', headers: { authorization: 'Bearer wrong' } }, res => { resolve(res.statusCode ?? 0); res.resume() }).on('error', reject).end()
  })
  assert.is(status, 401)
})

test('a malformed or oversized frame is rejected and costs the peer; the node keeps serving others', async () => {
  const bad = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false })
  const good = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false })
  try {
    const target = multiaddr(a.addrs[0])
    // 1. a length prefix announcing 1 GiB
    const s1 = await bad.dialProtocol(target, ECHO_PROTOCOL)
    s1.send(encodeFramePrefix(1024 ** 3))
    // 2. a frame whose body is not an Echo message
    const s2 = await bad.dialProtocol(target, ECHO_PROTOCOL)
    s2.send(new Uint8Array([4, 0x0a, 0xff, 0xff, 0xff]))
    await waitUntil('both streams to be closed by the node', () => s1.status !== 'open' && s2.status !== 'open', { ms: 10_000, everyMs: 250 })
    // 20 (oversized) + 10 (malformed), less a little recovery
    const charged = (st: { penalizedPeers: Array<{ peer: string, score: number }> }): boolean => st.penalizedPeers.some(p => p.peer === bad.peerId.toString() && p.score < -25)
    await waitUntil('the node to record the penalty', async () => charged(await ApiClient.connect(a.dataDir).call('GET', '/v1/status', undefined, { timeoutMs: 10_000 })), { ms: 10_000, everyMs: 250 })
    assert.ok(charged(JSON.parse(dbc(['--data-dir', a.dataDir, 'node', 'status', '--json']).stdout)), '`dbc node status` lists the penalty')
    // the node still serves a well-behaved peer, and the bad peer's connection survived one bad stream
    const echo = await EchoClient.open(good, await good.dial(target).then(conn => conn.remotePeer))
    const back = await echo.roundTrip(new TextEncoder().encode('still here'))
    assert.is(new TextDecoder().decode(back), 'still here')
    await echo.close()
  } finally {
    await Promise.all([bad.stop(), good.stop()])
  }
})


test('identity survives a restart (same peer id), and a second node on the same data dir is refused', async () => {
  const second = await dbcAsync(['--data-dir', b.dataDir, 'node', 'start', '--listen', '/ip4/127.0.0.1/tcp/0'])
  assert.is(second.code, 1)
  assert.match(second.stderr, /already running with data dir/)
  const stop = await dbcAsync(['--data-dir', b.dataDir, 'node', 'stop'])
  assert.is(stop.code, 0, stop.stderr)
  const again = await sb.startNode('b', ['--bootstrap', a.addrs[0]])
  assert.is(again.peerId, b.peerId)
})

test('config file in the data dir is used', async () => {
  const dir = sb.dataDir('withfile')
  const { mkdirSync } = await import('node:fs')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'config.yaml'), 'location: "48.85,2.35"\n')
  await sb.startNode('withfile')
  const st = JSON.parse(dbc(['--data-dir', dir, 'node', 'status', '--json']).stdout)
  assert.equal(st.location, { lat: 48.85, lon: 2.35 })
})

test.after(async () => { await sb.cleanup() })
test.run()
