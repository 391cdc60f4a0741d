// test-timeout-s: 600
// A provider behind a real NAT completes grid jobs (issue 14). The chain, a relay node and one
// submitter share a "public" namespace; the provider and a second submitter each sit in a
// namespace whose only way out is its own router namespace that masquerades (iptables
// MASQUERADE): nobody can dial into them. The provider runs `--behind-nat` (a reservation on
// the relay). Every node but the provider asks more than the jobs pay, so it is the only offer.
//  1. public submitter: the provider is reached on whatever route libp2p makes (it may dial the
//     submitter itself through its NAT, or DCUtR may upgrade the relayed connection);
//  2. submitter behind its own NAT: only the relay joins them; the public side's addresses are
//     private, so DCUtR has nothing to dial and every lease, task and result is relayed.
// Each asserts every task completes once with a correct result on the NATed provider and that
// explain names the route; it prints the share of copies by route and their round trip.
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { NatTopology, type NatNode } from '../netns/nat.js'
import { sleep } from '../netns/harness.js'
import { checkSquares, squaresJobFiles, summarize, type JobRun } from '../netns/scenarios.js'

const TASKS = 12
const PRICED_OUT = ['--price-cpu-hour', '100000']
let t: NatTopology
let relay: NatNode
let submitter: NatNode
let natSubmitter: NatNode
let provider: NatNode
let circuit: string

test.before(async () => {
  // uvu reports a failed hook without its error: print it
  await setup().catch((err: Error) => { console.error(err); throw err })
})

async function setup (): Promise<void> {
  t = await NatTopology.create({ sites: 2 })
  await t.startChain()
  relay = await t.startNode('relay', t.pub, t.pubAddr, ['--listen', `/ip4/${t.pubAddr}/tcp/4001`, '--location', '50.11,8.68', ...PRICED_OUT])
  const boot = `/ip4/${t.pubAddr}/tcp/4001/p2p/${relay.peerId!}`
  const [ps, ss] = t.sites
  provider = await t.startNode('provider', ps.ns, ps.addr, ['--listen', `/ip4/${ps.addr}/tcp/4001`, '--location', '48.85,2.35', '--bootstrap', boot, '--behind-nat', '--dht-client', '--price-cpu-hour', '100'])
  submitter = await t.startNode('submitter', t.pub, t.pubAddr, ['--listen', `/ip4/${t.pubAddr}/tcp/4002`, '--location', '50.11,8.68', '--bootstrap', boot, '--no-relay', ...PRICED_OUT])
  natSubmitter = await t.startNode('nat-submitter', ss.ns, ss.addr, ['--listen', `/ip4/${ss.addr}/tcp/4001`, '--location', '52.52,13.40', '--bootstrap', boot, '--no-relay', '--dht-client', ...PRICED_OUT])
  // the provider is reachable only through its reservation on the relay
  let c: string | undefined
  for (let i = 0; i < 120 && c === undefined; i++) {
    c = (await t.api<{ addrs: string[] }>(provider, 'GET', '/v1/status')).addrs.find(a => a.includes('/p2p-circuit') && !a.includes('/webrtc'))
    if (c === undefined) await sleep(500)
  }
  if (c === undefined) throw new Error(`the NATed provider got no relay reservation:\n${provider.log}`)
  circuit = c.endsWith(provider.peerId!) ? c : `${c}/p2p/${provider.peerId!}`
}

test.after(async () => {
  await t?.destroy()
  assert.equal(t?.remaining() ?? [], [], 'every namespace of the NAT topology is gone')
})

interface Copy { provider: string, outcome: string, ms?: number, route?: { kind: string, relay?: string, facts: string } }

async function runJob (from: NatNode, name: string): Promise<{ run: JobRun, copies: Copy[], routes: Record<string, unknown> }> {
  const { dir, manifest } = squaresJobFiles(t.root, name, TASKS)
  const t0 = Date.now()
  const { jobId } = await t.api<{ jobId: string }>(from, 'POST', '/v1/jobs', { manifest, baseDir: dir })
  let status: Record<string, any> = {}
  for (let i = 0; i < 600; i++) {
    status = await t.api<Record<string, any>>(from, 'GET', `/v1/jobs/${jobId}`)
    if (status.status !== 'running') break
    await sleep(500)
  }
  const makespanMs = Date.now() - t0
  if (status.status !== 'finished') console.log(JSON.stringify(await t.api(from, 'GET', `/v1/jobs/${jobId}/explain?task=0`), null, 1))
  assert.is(status.status, 'finished', `job ended ${JSON.stringify(status)}\n${from.name}:\n${from.log}\nprovider:\n${provider.log}`)
  const { results } = await t.api<{ results: Array<{ index: number, output: string }> }>(from, 'GET', `/v1/jobs/${jobId}/results`)
  const run: JobRun = { jobId, status, makespanMs, results, byProvider: {}, events: 0 }
  assert.equal(checkSquares(run, TASKS), [], 'every task has one correct result')
  assert.is(status.done, TASKS)
  assert.is(status.billedCopies, TASKS, `each task billed once (${String(status.billedCopies)} billed copies for ${TASKS} tasks)`)
  const copies: Copy[] = []
  let routes: Record<string, unknown> = {}
  for (let i = 0; i < TASKS; i++) {
    const e = await t.api<{ task: { copies: Copy[] }, routes: Record<string, unknown> }>(from, 'GET', `/v1/jobs/${jobId}/explain?task=${i}`)
    const ran = e.task.copies.filter(c => c.outcome !== 'failed' && c.outcome !== 'lost')
    assert.ok(ran.length >= 1, `task ${i} has a copy that ran: ${JSON.stringify(e.task.copies)}`)
    for (const c of ran) {
      assert.is(c.provider, provider.peerId, `task ${i} ran on the NATed provider`)
      assert.ok(c.route !== undefined, `task ${i}'s copy names its route`)
    }
    copies.push(...ran)
    routes = e.routes
  }
  const kinds: Record<string, number> = {}
  for (const c of copies) kinds[c.route!.kind] = (kinds[c.route!.kind] ?? 0) + 1
  const ms = summarize(copies.flatMap(c => c.ms === undefined ? [] : [c.ms]))
  console.log(`${name}: ${TASKS} tasks in ${makespanMs} ms; copies by route ${JSON.stringify(kinds)}; per-copy round trip p50 ${ms.p50} ms, p90 ${ms.p90} ms\n  route: ${JSON.stringify(routes[provider.peerId!])}`)
  return { run, copies, routes }
}

test('the NAT is real: nothing dials into a site; a site dials out through its router', () => {
  const [ps] = t.sites
  const inward = t.tcpReachable(t.pub, ps.addr, 4001)
  assert.is.not(inward, 'connected', `a TCP connect from the public side into the NATed namespace fails (${inward})`)
  assert.is(t.tcpReachable(ps.ns, t.pubAddr, 4001), 'connected', 'the NATed side reaches the public side')
  assert.is.not(t.tcpReachable(t.sites[1].ns, ps.addr, 4001), 'connected', 'one site cannot dial into another')
})

test('a public submitter runs a grid job on the provider behind NAT; explain names the route', async () => {
  const { copies } = await runJob(submitter, 'public-submitter')
  for (const c of copies) assert.ok(['direct', 'hole-punched', 'relayed'].includes(c.route!.kind), c.route!.facts)
})

test('a submitter behind its own NAT reaches the NATed provider only through the relay: every copy relayed via it', async () => {
  // the first relayed dial is sometimes closed while it opens (seen once in 8 runs on a loaded
  // machine: "Remote closed connection during opening"); a later one goes through
  let p: { rtts: number[] } | undefined
  for (let i = 0; p === undefined; i++) {
    try { p = await t.api<{ rtts: number[] }>(natSubmitter, 'POST', '/v1/ping', { peer: circuit, count: 3 }, 60_000) } catch (err) {
      if (i >= 5) throw err
      console.log(`relayed ping ${i + 1} failed, again: ${(err as Error).message}`)
      await sleep(2000)
    }
  }
  console.log(`NATed submitter -> NATed provider, ping through the relay: ${(p?.rtts ?? []).map(r => r.toFixed(1)).join(', ')} ms`)
  const { copies } = await runJob(natSubmitter, 'nat-submitter')
  for (const c of copies) {
    assert.is(c.route!.kind, 'relayed', c.route!.facts)
    assert.is(c.route!.relay, relay.peerId, 'relayed via the relay node')
  }
})

test.run()
