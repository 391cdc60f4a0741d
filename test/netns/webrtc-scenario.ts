// Two NATed sites, a provider behind one and a submitter behind the other, both `--behind-nat`
// (WebRTC on), and a relay node on the public side that also answers STUN (src/net/stun, UDP
// 3478): the scenario of test/integration/netns-webrtc.test.ts (firewalled routers: WebRTC) and
// test/long/netns-webrtc.test.ts (routers that defeat a UDP punch: relayed). Nodes start
// together. WEBRTC_DEBUG=<debug namespaces> (e.g. 'dbc:task,libp2p:webrtc*') writes the
// submitter's debug log to /tmp/webrtc-submitter-debug.log.
import * as assert from 'uvu/assert'
import { appendFileSync } from 'node:fs'
import { NatTopology, type NatNode, type NatTopologyOptions } from './nat.js'
import { sleep } from './harness.js'
import { runNatGrid, type NatNet, type GridResult } from './nat-scenarios.js'

const PRICED_OUT = ['--price-cpu-hour', '100000']

export interface TwoNats { t: NatTopology, net: NatNet, relay: NatNode, provider: NatNode, submitter: NatNode, circuit: string, contactAt?: number }

/**
 * A relayed connection from the submitter to the provider (a ping through the relay) before a
 * job: the capability index does not name a NATed DHT client, so the job asks its connected
 * peers; and the first offer request then waits only for the WebRTC attempt, not also for the
 * dial, within the 5 s an offer may take.
 */
async function contact (s: TwoNats): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const conns = await connsTo(s.t, s.submitter, s.provider)
      if (conns.length > 0) {
        console.log(`  ${s.submitter.name}'s connections to the provider before the job: ${conns.map(c => `${c.direction} ${c.addr.includes('/webrtc') ? 'WebRTC' : 'relayed'} opened ${c.openedAt - s.contactAt!} ms after the first relayed ping`).join('; ')}`)
        return
      }
      s.contactAt ??= Date.now()
      await s.t.api(s.submitter, 'POST', '/v1/ping', { peer: s.circuit, count: 1 }, 60_000)
    } catch (err) {
      if (i >= 5) throw err
      await sleep(1000)
    }
  }
}

async function waitAddr (t: NatTopology, n: NatNode, part: string): Promise<string> {
  for (let i = 0; i < 240; i++) {
    const a = (await t.api<{ addrs: string[] }>(n, 'GET', '/v1/status')).addrs.find(x => x.includes(part))
    if (a !== undefined) return a
    await sleep(250)
  }
  throw new Error(`${n.name} announces no ${part} address:\n${n.log}`)
}

export async function startTwoNats (routers: Pick<NatTopologyOptions, 'firewall' | 'randomFully'>): Promise<TwoNats> {
  const t = await NatTopology.create({ sites: 2, pubNet: '7.77.0', ...routers })
  try {
    await t.startChain()
    const relayAddr = `/ip4/${t.pubAddr}/tcp/4001`
    const relay = await t.startNode('relay', t.pub, t.pubAddr, ['--listen', relayAddr, '--announce', relayAddr, '--location', '50.11,8.68', ...PRICED_OUT], 180_000)
    const boot = `${relayAddr}/p2p/${relay.peerId!}`
    const [ps, ss] = t.sites
    const [provider, submitter] = await Promise.all([
      t.startNode('provider', ps.ns, ps.addr, ['--listen', `/ip4/${ps.addr}/tcp/4001`, '--location', '48.85,2.35', '--bootstrap', boot, '--behind-nat', '--dht-client', '--price-cpu-hour', '100'], 180_000),
      t.startNode('nat-submitter', ss.ns, ss.addr, ['--listen', `/ip4/${ss.addr}/tcp/4001`, '--location', '52.52,13.40', '--bootstrap', boot, '--behind-nat', '--dht-client', ...PRICED_OUT], 180_000, process.env.WEBRTC_DEBUG !== undefined ? { DEBUG: process.env.WEBRTC_DEBUG, DEBUG_COLORS: '0' } : {}, process.env.WEBRTC_DEBUG !== undefined ? (x: string) => { appendFileSync('/tmp/webrtc-submitter-debug.log', x) } : undefined)
    ])
    const circuit = (await waitAddr(t, provider, '/p2p-circuit/webrtc')).replace(/\/webrtc.*$/, '')
    await waitAddr(t, submitter, '/p2p-circuit')
    // first contact through the relay before the job (as netns-dcutr does): the first offer request
    // then waits only for the WebRTC attempt, not also for the dial, within the 5 s an offer may take
    const s: TwoNats = { t, net: { t, relays: [relay], natSubmitter: submitter, providers: [provider] }, relay, provider, submitter, circuit: circuit.endsWith(provider.peerId!) ? circuit : `${circuit}/p2p/${provider.peerId!}` }
    await contact(s)
    return s
  } catch (err) {
    await t.destroy()
    throw err
  }
}

interface PeerRow { peerId: string, addr: string, direction: string, openedAt: number }
export async function connsTo (t: NatTopology, from: NatNode, to: NatNode): Promise<PeerRow[]> {
  return (await t.api<{ peers: PeerRow[] }>(from, 'GET', '/v1/peers')).peers.filter(p => p.peerId === to.peerId)
}

/** Runs `tasks` tasks from the NATed submitter and asserts every copy ran on `kind` (WebRTC / relayed with WebRTC tried and failed). */
export async function gridOn (s: TwoNats, name: string, tasks: number, kind: 'hole-punched' | 'relayed'): Promise<GridResult> {
  await contact(s)
  const r = await runNatGrid(s.net, s.submitter, name, tasks)
  for (const c of r.copies) {
    assert.is(c.route!.kind, kind, `route ${JSON.stringify(c.route)}`)
    if (kind === 'hole-punched') assert.ok(c.route!.facts.includes('WebRTC connection'), c.route!.facts)
    else {
      assert.is(c.route!.relay, s.relay.peerId, 'relayed via the relay node')
      // tried by us, or by the provider while ours waited (both NATed sides dial at first contact)
      assert.match(c.route!.facts, /WebRTC (found no path|attempt still running|attempt deferred: the peer's own WebRTC attempt to us was in flight)/, `the route book tried WebRTC: ${c.route!.facts}`)
    }
  }
  const conns = await connsTo(s.t, s.submitter, s.provider)
  console.log(`  WebRTC connection opened ${conns.filter(c => c.addr.includes('/webrtc')).map(c => `${c.openedAt - s.contactAt!} ms (${c.direction})`).join(', ') || '(none)'} after the first relayed ping`)
  console.log(`  route facts: ${r.copies[0].route!.facts}\n  submitter's connections to the provider: ${conns.map(c => `${c.direction} ${c.addr}`).join(', ')}`)
  const webrtc = conns.some(c => /\/webrtc\//.test(c.addr))
  assert.is(webrtc, kind === 'hole-punched', `a WebRTC connection is open: ${String(webrtc)}`)
  return r
}
