// Scenarios behind real NATs (nat.ts), shared by the quick test (test/integration/
// netns-nat-relay.test.ts) and the long one (test/long/netns-nat.test.ts):
//  - a training group whose members sit behind two different NATs: their slices can only travel
//    through a relay; every round has every member;
//  - a relay killed (SIGKILL) mid-job: the NATed providers hold reservations on two relays, the
//    NATed submitter reaches them only through relays; every task completes once, correct, and
//    is billed once.
// Topology: public namespace (anvil, relays R1 :4001 and R2 :4003, a public submitter :4002
// unless left out);
// site 0 and site 2 each a NATed provider (`--behind-nat`, DBC_RELAY_RESERVATIONS=2); site 1 a
// NATed submitter. Every node but the two providers asks more than the jobs pay.
import * as assert from 'uvu/assert'
import { NatTopology, type NatNode } from './nat.js'
import { sleep } from './harness.js'
import { checkSquares, squaresJobFiles, summarize, type JobRun } from './scenarios.js'

const PRICED_OUT = ['--price-cpu-hour', '100000']

export interface NatNet { t: NatTopology, relays: NatNode[], submitter?: NatNode, natSubmitter: NatNode, providers: NatNode[] }

/** Circuit addresses a node announces (one per relay it holds a reservation on; not the `/p2p-circuit/webrtc` ones of a NATed node's WebRTC). */
async function circuits (t: NatTopology, n: NatNode): Promise<string[]> {
  return (await t.api<{ addrs: string[] }>(n, 'GET', '/v1/status')).addrs.filter(a => a.includes('/p2p-circuit') && !a.includes('/webrtc'))
}

/** `publicSubmitter: false` leaves the public submitter out (one daemon less for the quick test). */
export async function startNatNet (opts: { publicSubmitter?: boolean } = {}): Promise<NatNet> {
  const t = await NatTopology.create({ sites: 3 })
  try {
    await t.startChain()
    // started side by side: daemon start-up is most of this test's time on a loaded machine
    const relays = await Promise.all([4001, 4003].map(async (port, i) => await t.startNode(`relay${i + 1}`, t.pub, t.pubAddr, ['--listen', `/ip4/${t.pubAddr}/tcp/${port}`, '--location', '50.11,8.68', ...PRICED_OUT], 180_000)))
    const boot = relays.flatMap((r, i) => ['--bootstrap', `/ip4/${t.pubAddr}/tcp/${4001 + 2 * i}/p2p/${r.peerId!}`])
    const [s0, s1, s2] = t.sites
    const natProvider = async (name: string, site: typeof s0, location: string): Promise<NatNode> => await t.startNode(name, site.ns, site.addr, ['--listen', `/ip4/${site.addr}/tcp/4001`, '--location', location, ...boot, '--behind-nat', '--dht-client', '--price-cpu-hour', '100'], 180_000, { DBC_RELAY_RESERVATIONS: '2' })
    const [pa, pb, natSubmitter, submitter] = await Promise.all([
      natProvider('provider-a', s0, '48.85,2.35'),
      natProvider('provider-b', s2, '45.46,9.19'),
      t.startNode('nat-submitter', s1.ns, s1.addr, ['--listen', `/ip4/${s1.addr}/tcp/4001`, '--location', '52.52,13.40', ...boot, '--no-relay', '--dht-client', ...PRICED_OUT], 180_000),
      ...(opts.publicSubmitter !== false ? [t.startNode('submitter', t.pub, t.pubAddr, ['--listen', `/ip4/${t.pubAddr}/tcp/4002`, '--location', '50.11,8.68', ...boot, '--no-relay', ...PRICED_OUT], 180_000)] : [])
    ])
    const providers = [pa, pb]
    // each provider is reachable only through its reservations: one on each relay
    for (const p of providers) {
      let c: string[] = []
      for (let i = 0; i < 180 && c.length < 2; i++) {
        c = await circuits(t, p)
        if (c.length < 2) await sleep(500)
      }
      const via = new Set(c.map(a => relays.find(r => a.includes(`/p2p/${r.peerId!}/p2p-circuit`))?.name))
      if (via.size < 2) throw new Error(`${p.name} holds reservations on ${[...via].join(', ')} only (addrs ${c.join(' ')}):\n${p.log}`)
    }
    return { t, relays, ...(submitter !== undefined ? { submitter } : {}), natSubmitter, providers }
  } catch (err) {
    await t.destroy()
    throw err
  }
}

export interface Copy { provider: string, outcome: string, ms?: number, route?: { kind: string, relay?: string, relays?: string[], facts: string } }

export interface GridResult {
  run: JobRun
  copies: Copy[]
  /** Copies grouped by their provider's route as explain shows it (the last route to that provider), with their round trips. */
  byRoute: Record<string, { copies: number, p50: number, p90: number }>
  /** Requests (offers, leases, tasks, vouchers) the submitter sent each provider on each kind of route. */
  uses: Record<string, Record<string, number>>
  killedAt?: number
}

/** Route name for shares: direct / hole-punched / relayed via <relay name> / overlay via <relay names>. */
function routeName (net: NatNet, c: Copy): string {
  const name = (id: string | undefined): string => net.relays.find(r => r.peerId === id)?.name ?? id ?? '?'
  if (c.route?.kind === 'relayed') return `relayed via ${name(c.route.relay)}`
  if (c.route?.kind === 'overlay') return `overlay via ${(c.route.relays ?? []).map(name).sort().join('+')}`
  return c.route?.kind ?? 'unknown'
}

/**
 * A squares grid job from `from`; `killRelayAt`: SIGKILL relay1 once that many tasks are done, or
 * ('first-copy') at the first poll that sees a copy running or done (a job of tiny tasks can run
 * from its first result to its last between two polls, each a process spawned in the namespace: a
 * clean-clone run saw 40 of 40 done at the first poll with one done, and the relay died after the job).
 * Asserts every task has one correct result on a NATed provider and is billed once; returns
 * the copies with their routes (the route in explain is the provider's last one).
 */
export async function runNatGrid (net: NatNet, from: NatNode, name: string, tasks: number, opts: { killRelayAt?: number | 'first-copy' } = {}): Promise<GridResult> {
  const { t } = net
  const { dir, manifest } = squaresJobFiles(t.root, name, tasks)
  const t0 = Date.now()
  const { jobId } = await t.api<{ jobId: string }>(from, 'POST', '/v1/jobs', { manifest, baseDir: dir })
  let status: Record<string, any> = {}
  let killedAt: number | undefined
  const routeAt: Record<number, string> = {}
  for (let i = 0; i < 1200; i++) {
    status = await t.api<Record<string, any>>(from, 'GET', `/v1/jobs/${jobId}`)
    const due = opts.killRelayAt === 'first-copy' ? (status.done ?? 0) + (status.running ?? 0) > 0 : (status.done ?? 0) >= (opts.killRelayAt ?? Infinity)
    if (opts.killRelayAt !== undefined && killedAt === undefined && status.status === 'running' && due) {
      killedAt = status.done
      await t.kill(net.relays[0])
      console.log(`${name}: relay1 killed (SIGKILL) after ${String(killedAt)}/${tasks} tasks, ${String(status.running ?? 0)} copies running`)
    }
    if (status.status !== 'running') break
    await sleep(300)
  }
  const makespanMs = Date.now() - t0
  // the explain of each failed task (where its copies ran, what each became), else task 0's
  if (status.status !== 'finished') for (const i of [...new Set<number>((status.summary?.failures ?? [{ index: 0 }]).map((f: { index: number }) => f.index))].slice(0, 4)) console.log(JSON.stringify(await t.api(from, 'GET', `/v1/jobs/${jobId}/explain?task=${i}`).catch(e => String(e)), null, 1))
  assert.is(status.status, 'finished', `job ended ${JSON.stringify(status)}\n${from.name}:\n${from.log}\n${net.providers.map(p => `${p.name}:\n${p.log}`).join('\n')}`)
  const { results } = await t.api<{ results: Array<{ index: number, output: string }> }>(from, 'GET', `/v1/jobs/${jobId}/results`)
  const run: JobRun = { jobId, status, makespanMs, results, byProvider: {}, events: 0 }
  assert.equal(checkSquares(run, tasks), [], 'every task has one correct result')
  assert.is(status.done, tasks)
  assert.is(status.billedCopies, tasks, `each task billed once (${String(status.billedCopies)} billed copies for ${tasks} tasks)`)
  const copies: Copy[] = []
  const ids = net.providers.map(p => p.peerId)
  let routes: Record<string, { uses?: Record<string, number> }> = {}
  for (let i = 0; i < tasks; i++) {
    const e = await t.api<{ task: { copies: Copy[] }, routes: typeof routes }>(from, 'GET', `/v1/jobs/${jobId}/explain?task=${i}`)
    routes = e.routes ?? {}
    const ran = e.task.copies.filter(c => c.outcome !== 'failed' && c.outcome !== 'lost')
    assert.ok(ran.length >= 1, `task ${i} has a copy that ran: ${JSON.stringify(e.task.copies)}`)
    for (const c of ran) {
      assert.ok(ids.includes(c.provider), `task ${i} ran on a NATed provider`)
      assert.ok(c.route !== undefined, `task ${i}'s copy names its route`)
      routeAt[i] = routeName(net, c)
    }
    copies.push(...ran)
  }
  const groups: Record<string, number[]> = {}
  for (const c of copies) (groups[routeName(net, c)] ??= []).push(c.ms ?? NaN)
  const byRoute: GridResult['byRoute'] = {}
  for (const [k, ms] of Object.entries(groups)) { const s = summarize(ms.filter(Number.isFinite)); byRoute[k] = { copies: ms.length, p50: s.p50, p90: s.p90 } }
  const shares = Object.entries(byRoute).map(([k, v]) => `${k} ${v.copies}/${copies.length} (p50 ${v.p50} ms, p90 ${v.p90} ms)`).join('; ')
  const uses: GridResult['uses'] = {}
  for (const p of net.providers) uses[p.name] = routes[p.peerId!]?.uses ?? {}
  const perProvider = net.providers.map(p => `${p.name} ${copies.filter(c => c.provider === p.peerId).length} copies, requests by route ${JSON.stringify(uses[p.name])}`).join('; ')
  console.log(`${name}: ${tasks} tasks in ${makespanMs} ms, ${String(status.billedCopies)} billed\n  by provider: ${perProvider}\n  copies by their provider's last route: ${shares}`)
  return { run, copies, byRoute, uses, ...(killedAt !== undefined ? { killedAt } : {}) }
}

export interface TrainRoutes { member: string, to: string, kind: string, relay?: string, bytes: Record<string, number>, freshRelayed: number }

/**
 * A training job coordinated by `coordinator` over the two NATed providers: their slices can
 * only cross through a relay (two NATs). Asserts every round had both members and dropped none;
 * returns each member's routes (from its status) and the history.
 */
export async function trainAcrossNat (net: NatNet, coordinator: NatNode, rounds: number): Promise<{ history: any[], routes: TrainRoutes[] }> {
  const { t, providers } = net
  const submitter = coordinator
  const peers = providers.map(p => p.peerId!)
  const spec = { model: { kind: 'mlp', hidden: 32 }, dataset: { trainPerClass: 100, testPerClass: 50 }, groupSize: 2, rounds, localSteps: 5, batchSize: 16, learningRate: 0.1, seed: 5, evalEvery: rounds, deadline: { initialMs: 30_000 }, budget: 20, maxPricePerHour: 200 }
  // the coordinator reaches each member first (a ping by peer id: found through the relays), so
  // that a slow discovery on a loaded machine does not read as a refused invitation
  for (const p of providers) {
    for (let i = 0; ; i++) {
      try {
        const r = await t.api<{ rtts: number[] }>(submitter, 'POST', '/v1/ping', { peer: p.peerId, count: 1 }, 60_000)
        console.log(`${submitter.name} -> ${p.name} ping ${r.rtts.map(x => x.toFixed(0)).join(',')} ms`)
        break
      } catch (err) {
        if (i >= 5) throw err
        console.log(`${submitter.name} -> ${p.name} ping ${i + 1} failed, again: ${(err as Error).message.slice(0, 200)}`)
        await sleep(2000)
      }
    }
  }
  const t0 = Date.now()
  const { jobId } = await t.api<{ jobId: string }>(submitter, 'POST', '/v1/training', { spec, peers }, 60_000)
  let j: any
  for (let i = 0; i < 1200; i++) {
    j = await t.api<any>(submitter, 'GET', `/v1/training/${jobId}`)
    if (j.status !== 'running') break
    await sleep(500)
  }
  assert.is(j.status, 'done', `training ended ${JSON.stringify({ status: j.status, error: j.error, refusals: j.refusals })}\n${providers.map(p => `${p.name}:\n${p.log}`).join('\n')}`)
  const history: any[] = j.history
  assert.equal(history.map(h => h.round), Array.from({ length: rounds }, (_, i) => i), 'every round ran once')
  for (const h of history) {
    assert.equal([...h.members].sort(), [...peers].sort(), `round ${String(h.round)} had both NATed members: ${JSON.stringify(history.map(x => ({ round: x.round, members: x.members.length, dropped: x.dropped, roundMs: x.roundMs, deadlineMs: x.deadlineMs })))}; refusals ${JSON.stringify(j.refusals)}`)
    assert.equal(h.dropped, [], `round ${String(h.round)} dropped nobody: ${JSON.stringify(history.map(x => ({ round: x.round, dropped: x.dropped.length, roundMs: Math.round(x.roundMs), deadlineMs: Math.round(x.deadlineMs), bytes: x.bytesSent })))}\n${providers.map(p => `${p.name}:\n${String(p.log ?? '').split('\n').slice(-40).join('\n')}`).join('\n')}`)
  }
  const routes: TrainRoutes[] = []
  const nameOf = (id: string): string => [...net.relays, submitter, ...providers].find(n => n.peerId === id)?.name ?? id
  for (const [to, info] of Object.entries<any>((await t.api<any>(submitter, 'GET', '/v1/status')).training?.trainingRoutes ?? {})) routes.push({ member: submitter.name, to: nameOf(to), kind: info.kind, ...(info.relay !== undefined ? { relay: nameOf(info.relay) } : {}), bytes: info.bytes, freshRelayed: info.freshRelayed })
  for (const p of providers) {
    const st = await t.api<any>(p, 'GET', '/v1/status')
    const r: Record<string, any> = st.training?.trainingRoutes ?? {}
    for (const [to, info] of Object.entries(r)) routes.push({ member: p.name, to: nameOf(to), kind: info.kind, ...(info.relay !== undefined ? { relay: nameOf(info.relay) } : {}), bytes: info.bytes, freshRelayed: info.freshRelayed })
  }
  console.log(`training across two NATs, coordinated by ${submitter.name}: ${rounds} rounds in ${Date.now() - t0} ms, accuracy ${String(j.accuracy)}; round ms ${history.map(h => Math.round(h.roundMs)).join(',')}; deadlines ${history.map(h => Math.round(h.deadlineMs)).join(',')}`)
  for (const r of routes) console.log(`  ${r.member} -> ${r.to}: ${r.kind}${r.relay !== undefined ? ` via ${r.relay}` : ''}, bytes ${JSON.stringify(r.bytes)}, fresh relayed ${r.freshRelayed}`)
  // the members' slices to each other: nothing but a relay joins two NATs, and they take a relayed
  // connection (the overlay only carries frames while none has opened). (Session 15-16: a dial by peer id between the NATed members
  // waited out the other's private address first, so under a CPU hog all of a 4-round job's slices
  // could take the overlay; src/net/peer-dials.ts skips that address, and the relaxed check is gone.)
  for (const [a, b] of [[providers[0], providers[1]], [providers[1], providers[0]]]) {
    const r = routes.find(x => x.member === a.name && x.to === b.name)
    assert.ok(r !== undefined, `${a.name} sent to ${b.name}`)
    assert.is(r.kind, 'relayed', `${a.name} -> ${b.name} is relayed`)
    assert.ok((r.bytes.relayed ?? 0) > 0, `${a.name}'s slices to ${b.name} crossed the relay`)
    assert.is(r.bytes.direct ?? 0, 0, `${a.name}'s slices to ${b.name} went direct across two NATs`)
  }
  return { history, routes }
}
