// A training job whose coordinator sits behind one real NAT (iptables MASQUERADE, nat.ts) and
// whose members sit behind two others, with no circuit relay anywhere (the one public relay
// runs `--no-relay`): no direct connection can open between any two of them (each NAT router
// has no route into another site), and no relayed one either. The only way between them is the
// overlay: sealed envelopes through the public node, which forwards what it cannot read. Shared
// by test/integration/netns-nat-train.test.ts (quick).
//
//   ns pub: anvil, relay1 (10.215.0.1:4001, --no-relay: overlay relay and DHT, no circuits)
//   site 0: coordinator (192.168.77.2)   site 1: member-a (192.168.78.2)   site 2: member-b (192.168.79.2)
import * as assert from 'uvu/assert'
import { NatTopology, type NatNode } from './nat.js'
import { sleep } from './harness.js'

export interface OverlayOnlyNet { t: NatTopology, relay: NatNode, coordinator: NatNode, members: NatNode[] }

export async function startOverlayOnlyNet (): Promise<OverlayOnlyNet> {
  const t = await NatTopology.create({ sites: 3 })
  try {
    await t.startChain()
    const relay = await t.startNode('relay1', t.pub, t.pubAddr, ['--listen', `/ip4/${t.pubAddr}/tcp/4001`, '--location', '50.11,8.68', '--no-relay', '--price-cpu-hour', '100000'], 180_000)
    const boot = ['--bootstrap', `/ip4/${t.pubAddr}/tcp/4001/p2p/${relay.peerId!}`]
    const [s0, s1, s2] = t.sites
    const node = async (name: string, site: typeof s0, location: string, extra: string[]): Promise<NatNode> =>
      await t.startNode(name, site.ns, site.addr, ['--listen', `/ip4/${site.addr}/tcp/4001`, '--location', location, ...boot, '--no-relay', '--dht-client', ...extra], 180_000)
    // started side by side: daemon start-up is most of this test's time on a loaded machine
    const [coordinator, ma, mb] = await Promise.all([
      node('coordinator', s0, '52.52,13.40', ['--price-cpu-hour', '100000']),
      node('member-a', s1, '48.85,2.35', ['--price-cpu-hour', '100']),
      node('member-b', s2, '45.46,9.19', ['--price-cpu-hour', '100'])
    ])
    return { t, relay, coordinator, members: [ma, mb] }
  } catch (err) {
    await t.destroy()
    throw err
  }
}

/** Each site reaches the public side (through its NAT) and no other site: checked with plain TCP. */
export function assertSitesIsolated (net: OverlayOnlyNet): void {
  const { t } = net
  const [s0, s1, s2] = t.sites
  assert.is(t.tcpReachable(s0.ns, t.pubAddr, 4001), 'connected', 'the coordinator reaches the public relay through its NAT')
  for (const [from, to] of [[s0, s1], [s0, s2], [s1, s0], [s1, s2], [s2, s0]] as const) {
    assert.is.not(t.tcpReachable(from.ns, to.addr, 4001), 'connected', `${from.addr} cannot open a TCP connection to ${to.addr}`)
  }
}

export interface OverlayTrainRoute { from: string, to: string, kind: string, relays: string[], bytes: Record<string, number>, facts: string }

/**
 * A training job coordinated behind its NAT over the two NATed members; asserts every round ran
 * once with both members and dropped none, and that the model learned. Returns the routes each
 * node reports (its status' trainingRoutes) with peers and relays by name, and the history.
 */
export async function trainOverOverlay (net: OverlayOnlyNet, rounds: number): Promise<{ history: any[], routes: OverlayTrainRoute[], accuracy: number, ms: number, paid: unknown }> {
  const { t, coordinator, members } = net
  const peers = members.map(m => m.peerId!)
  const spec = { model: { kind: 'mlp', hidden: 32 }, dataset: { trainPerClass: 100, testPerClass: 50 }, groupSize: 2, rounds, localSteps: 5, batchSize: 16, learningRate: 0.1, seed: 5, evalEvery: rounds, deadline: { initialMs: 30_000 }, budget: 20, maxPricePerHour: 200 }
  const t0 = Date.now()
  const { jobId } = await t.api<{ jobId: string }>(coordinator, 'POST', '/v1/training', { spec, peers }, 60_000)
  let j: any
  for (let i = 0; i < 1200; i++) {
    j = await t.api<any>(coordinator, 'GET', `/v1/training/${jobId}`)
    if (j.status !== 'running') break
    await sleep(500)
  }
  const ms = Date.now() - t0
  assert.is(j.status, 'done', `training ended ${JSON.stringify({ status: j.status, error: j.error, refusals: j.refusals })}\ncoordinator:\n${coordinator.log}\n${members.map(p => `${p.name}:\n${p.log}`).join('\n')}`)
  const history: any[] = j.history
  assert.equal(history.map(h => h.round), Array.from({ length: rounds }, (_, i) => i), 'every round ran once')
  for (const h of history) {
    assert.equal([...h.members].sort(), [...peers].sort(), `round ${String(h.round)} had both members: ${JSON.stringify(history.map(x => ({ round: x.round, members: x.members.length, dropped: x.dropped, roundMs: x.roundMs, deadlineMs: x.deadlineMs })))}; refusals ${JSON.stringify(j.refusals)}`)
    assert.equal(h.dropped, [], `round ${String(h.round)} dropped nobody`)
  }
  const nodes = [net.relay, coordinator, ...members]
  const nameOf = (id: string): string => nodes.find(n => n.peerId === id)?.name ?? id
  const routes: OverlayTrainRoute[] = []
  for (const n of [coordinator, ...members]) {
    const st = await t.api<any>(n, 'GET', '/v1/status')
    for (const [to, info] of Object.entries<any>(st.training?.trainingRoutes ?? {})) {
      routes.push({ from: n.name, to: nameOf(to), kind: info.kind, relays: (info.relays ?? []).map(nameOf), bytes: info.bytes, facts: info.facts })
    }
  }
  return { history, routes, accuracy: j.accuracy, ms, paid: j.payment }
}
