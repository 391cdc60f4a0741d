// test-timeout-s: 600
// DCUtR between namespaces (issue 14, item 4). The NAT topology of nat.ts with a PUBLIC-looking
// public side (7.77.0.0/24: not in @libp2p/utils' isPrivate list), so DCUtR may dial it; the
// sites' LANs stay 192.168.x behind their routers' MASQUERADE. The relay and the public
// submitter announce their public addresses (`--announce`): without autonat, libp2p 3 keeps a
// public listen address unverified and neither identify nor a relay reservation would carry it.
//  1. public submitter -> NATed provider: first contact is a relayed connection through the
//     relay; the provider (the inbound side) runs DCUtR, sees the submitter's public address and
//     dials it through its NAT (DCUtR's "unilateral connection upgrade"), then closes the relayed
//     connection. The route book calls the result `hole-punched`; every task runs on it.
//  2. NATed submitter -> NATed provider (two NATs): DCUtR runs and fails because neither side has
//     a public address to offer: js-libp2p's identify drops TCP observed addresses (a TCP dial
//     does not come from the listen port, js-libp2p#2620) and @libp2p/tcp cannot dial from the
//     listen port, so no simultaneous open is possible. The test asserts that reason from the
//     DCUtR debug log, and that every task then runs relayed, correct and billed once.
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { NatTopology, type NatNode } from '../netns/nat.js'
import { sleep, waitUntil } from '../helpers/wait.js'
import { runNatGrid, type NatNet } from '../netns/nat-scenarios.js'

const TASKS = 12
const PUB_NET = '7.77.0'
const PRICED_OUT = ['--price-cpu-hour', '100000']
// libp2p's own debug log for DCUtR (the daemon passes no logger to libp2p, so `debug` prints it)
// and identify's trace, which shows the NAT's public mapping observed and then dropped (TCP)
const DCUTR_DEBUG = { DEBUG: 'libp2p:dcutr*,libp2p:identify:trace', DEBUG_COLORS: '0' }
let t: NatTopology
let net: NatNet
let relay: NatNode
let submitter: NatNode
let natSubmitter: NatNode
let provider: NatNode
let circuit: string
const dcutrLog: Record<string, string> = { provider: '', 'nat-submitter': '' }
const partial: Record<string, string> = {}
// whole lines only: a chunk of output may end mid-line (each chunk starts with the node's label)
const keep = (name: string) => (s: string): void => {
  const lines = ((partial[name] ?? '') + s.replace(/^\[[\w-]+\] /, '')).split('\n')
  partial[name] = lines.pop()!
  for (const l of lines) if (l.includes('libp2p:dcutr') || l.includes('observed address')) dcutrLog[name] += `${l}\n`
}

test.before(async () => {
  await setup().catch((err: Error) => { console.error(err); throw err })
})

async function setup (): Promise<void> {
  t = await NatTopology.create({ sites: 2, pubNet: PUB_NET })
  await t.startChain()
  const relayAddr = `/ip4/${t.pubAddr}/tcp/4001`
  relay = await t.startNode('relay', t.pub, t.pubAddr, ['--listen', relayAddr, '--announce', relayAddr, '--location', '50.11,8.68', ...PRICED_OUT], 180_000)
  const boot = `${relayAddr}/p2p/${relay.peerId!}`
  const [ps, ss] = t.sites
  ;[provider, natSubmitter] = await Promise.all([
    t.startNode('provider', ps.ns, ps.addr, ['--listen', `/ip4/${ps.addr}/tcp/4001`, '--location', '48.85,2.35', '--bootstrap', boot, '--behind-nat', '--dht-client', '--price-cpu-hour', '100'], 180_000, DCUTR_DEBUG, keep('provider')),
    t.startNode('nat-submitter', ss.ns, ss.addr, ['--listen', `/ip4/${ss.addr}/tcp/4001`, '--location', '52.52,13.40', '--bootstrap', boot, '--no-relay', '--dht-client', ...PRICED_OUT], 180_000, DCUTR_DEBUG, keep('nat-submitter'))
  ])
  let c: string | undefined
  for (let i = 0; i < 240 && c === undefined; i++) {
    // the relayed address, not the /p2p-circuit/webrtc one (the provider runs WebRTC; the submitters do not)
    c = (await t.api<{ addrs: string[] }>(provider, 'GET', '/v1/status')).addrs.find(a => a.includes('/p2p-circuit') && !a.includes('/webrtc'))
    if (c === undefined) await sleep(500)
  }
  if (c === undefined) throw new Error(`the NATed provider got no relay reservation:\n${provider.log}`)
  circuit = c.endsWith(provider.peerId!) ? c : `${c}/p2p/${provider.peerId!}`
  submitter = await startSubmitter(0)
  net = { t, relays: [relay], submitter, natSubmitter, providers: [provider] }
}

/**
 * The public submitter (attempt k: a fresh identity on port 4002 + 2k). It starts last and the
 * test reaches the provider through its circuit address at once; as a DHT client it is not in
 * the relay's routing table, so the provider's DHT walks do not hand it the submitter's address.
 */
async function startSubmitter (k: number): Promise<NatNode> {
  const addr = `/ip4/${t.pubAddr}/tcp/${4002 + 2 * k}`
  return await t.startNode(`submitter${k === 0 ? '' : `-${k}`}`, t.pub, t.pubAddr, ['--listen', addr, '--announce', addr, '--location', '50.11,8.68', '--bootstrap', `/ip4/${t.pubAddr}/tcp/4001/p2p/${relay.peerId!}`, '--no-relay', '--dht-client', ...PRICED_OUT], 180_000)
}

test.after(async () => {
  await t?.destroy()
  assert.equal(t?.remaining() ?? [], [], 'every namespace of the NAT topology is gone')
})

interface PeerRow { peerId: string, addr: string, direction: string, openedAt: number }
const connsTo = async (from: NatNode, to: NatNode): Promise<PeerRow[]> =>
  (await t.api<{ peers: PeerRow[] }>(from, 'GET', '/v1/peers')).peers.filter(p => p.peerId === to.peerId)

/** Pings `circuit` from `from` (a relayed dial unless a direct connection exists), retrying a dial closed while it opened. */
async function pingCircuit (from: NatNode): Promise<number[]> {
  for (let i = 0; ; i++) {
    try { return (await t.api<{ rtts: number[] }>(from, 'POST', '/v1/ping', { peer: circuit, count: 3 }, 60_000)).rtts } catch (err) {
      if (i >= 5) throw err
      console.log(`${from.name}: relayed ping ${i + 1} failed, again: ${(err as Error).message.slice(0, 600)}`)
      await sleep(2000)
    }
  }
}

const waitFor = async (what: string, cond: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> => { await waitUntil(what, cond, { ms, everyMs: 300 }) }

const line = (log: string, re: RegExp): string | undefined => log.split('\n').find(l => re.test(l))?.trim()

test('the public side is public to libp2p, the NAT is real', async () => {
  const { isPrivate } = await import('@libp2p/utils')
  const { multiaddr } = await import('@multiformats/multiaddr')
  assert.not.ok(isPrivate(multiaddr(`/ip4/${t.pubAddr}/tcp/4001`)), `${t.pubAddr} is public to isPrivate`)
  assert.not.ok(isPrivate(multiaddr(`/ip4/${t.sites[0].wan}/tcp/4001`)), `the router's WAN ${t.sites[0].wan} is public to isPrivate`)
  const [ps] = t.sites
  assert.is.not(t.tcpReachable(t.pub, ps.addr, 4001), 'connected', 'nothing dials into the NATed site')
  assert.is.not(t.tcpReachable(t.pub, ps.wan, 4001), 'connected', 'the router forwards no port')
  assert.is(t.tcpReachable(ps.ns, t.pubAddr, 4002), 'connected', 'the site dials out through its router')
})

test('public submitter: a relayed first contact is upgraded by DCUtR to a direct connection; grid tasks run on it', async () => {
  const upgraded = (id: string): RegExp => new RegExp(`unilateral connection upgrade to ${id} succeeded`)
  // the provider may learn the submitter's address (membership gossip) and dial it before any
  // relayed contact (2 of 6 runs): then there is nothing to upgrade, and a fresh submitter (a new
  // identity the provider has not heard of) tries again
  for (let k = 0; ; k++) {
    const before = await connsTo(submitter, provider)
    const dialledFirst = before.some(c => !c.addr.includes('/p2p-circuit')) && !upgraded(submitter.peerId!).test(dcutrLog.provider)
    if (!dialledFirst) {
      const rtts = await pingCircuit(submitter)
      console.log(`${submitter.name} -> provider ping via ${circuit}: ${rtts.map(r => r.toFixed(1)).join(', ')} ms; connections before: ${JSON.stringify(before)}`)
      break
    }
    console.log(`attempt ${k + 1}: the provider dialled ${submitter.name} directly before any relayed contact (${JSON.stringify(before)}); a fresh submitter`)
    assert.ok(k < 2, 'a relayed first contact within 3 fresh submitters')
    await t.kill(submitter)
    submitter = net.submitter = await startSubmitter(k + 1)
  }
  await waitFor('the DCUtR upgrade', async () => (await connsTo(submitter, provider)).some(c => !c.addr.includes('/p2p-circuit')))
  const after = await connsTo(submitter, provider)
  console.log(`submitter's connections to the provider after DCUtR: ${JSON.stringify(after)}`)
  const direct = after.find(c => !c.addr.includes('/p2p-circuit'))!
  assert.is(direct.direction, 'inbound', 'the NATed provider opened the direct connection')
  assert.ok(direct.addr.startsWith(`/ip4/${t.sites[0].wan}/tcp/`), `it comes from the provider's router (MASQUERADE): ${direct.addr}`)
  await waitFor('the provider\'s DCUtR log line', () => upgraded(submitter.peerId!).test(dcutrLog.provider), 30_000)
  console.log(`provider DCUtR: ${line(dcutrLog.provider, upgraded(submitter.peerId!))!}`)

  const r = await runNatGrid(net, submitter, 'dcutr-public', TASKS)
  for (const c of r.copies) {
    assert.is(c.route!.kind, 'hole-punched', `route ${JSON.stringify(c.route)}`)
  }
  console.log(`  route facts: ${r.copies[0].route!.facts}`)
})

test('two NATs: DCUtR runs and fails for want of a public address; every task runs relayed', async () => {
  const rtts = await pingCircuit(natSubmitter)
  console.log(`nat-submitter -> provider ping via the relay: ${rtts.map(r => r.toFixed(1)).join(', ')} ms`)
  // A (the dialler) answers B's CONNECT; B (the provider, inbound side) offered no public address
  await waitFor('the failed DCUtR exchange', () => /had no dialable multiaddrs|no multiaddrs/.test(dcutrLog['nat-submitter']) || /error while attempting DCUtR/.test(dcutrLog.provider), 60_000)
  await sleep(2000)
  const a = line(dcutrLog['nat-submitter'], /had no dialable multiaddrs|no multiaddrs/)
  const b = [line(dcutrLog.provider, /has no public addresses, not attempting unilateral/), line(dcutrLog.provider, /error while attempting DCUtR/)]
  // the provider's NAT mapping was observed by its peers, public, and dropped by identify (TCP)
  const observed = line(dcutrLog.provider, new RegExp(`our observed address was /ip4/${t.sites[0].wan.replace(/\./g, '\\.')}/tcp/`))
  const seen = [...new Set(dcutrLog.provider.split('\n').flatMap(l => /our observed address was (\S+)/.exec(l)?.[1].replace(/\/p2p\/\w+$/, '') ?? []))]
  console.log(`nat-submitter DCUtR (A): ${a ?? '(none)'}\nprovider DCUtR (B): ${b.map(x => x ?? '(none)').join('\n  ')}\nprovider identify: ${observed ?? '(no observed address logged)'}\n  every address the provider was observed at: ${seen.join(' ')}`)
  // what B offered in its CONNECT: its LAN address and its circuit, not the NAT's public mapping
  if (a !== undefined) assert.not.ok(a.includes(`/ip4/${t.sites[0].wan}/tcp/`), `the provider offered no public TCP address: ${a}`)
  assert.ok(a !== undefined || b[1] !== undefined, 'a DCUtR exchange was attempted and failed')
  assert.ok(b[0] !== undefined, 'the provider saw no public address of the NATed submitter (no unilateral upgrade)')
  const conns = await connsTo(natSubmitter, provider)
  assert.ok(conns.length > 0 && conns.every(c => c.addr.includes('/p2p-circuit')), `only relayed connections between the two NATs: ${JSON.stringify(conns)}`)

  const r = await runNatGrid(net, natSubmitter, 'dcutr-two-nats', TASKS)
  for (const c of r.copies) {
    assert.is(c.route!.kind, 'relayed', `route ${JSON.stringify(c.route)}`)
    assert.is(c.route!.relay, relay.peerId, 'relayed via the relay node')
  }
})

test.run()
