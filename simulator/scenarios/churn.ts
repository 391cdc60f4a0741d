// `churn`: findPeer lookups (the Kademlia model on tables built by joining; departed nodes
// stay in tables, returning nodes rejoin; see lookup-churn.ts for the lookup-only run) and gossip
// announcements (the core CyclonView + Gossip machines of src/core/membership, one pair per
// node) while nodes come and go with heavy-tailed sessions. One run per churn level gives
// "success vs churn". Checked: no node delivers an announcement twice; every lookup ends once.
import { CyclonView } from '../../src/core/membership/cyclon.js'
import { Gossip, type GossipItem } from '../../src/core/membership/gossip.js'
import { ChurnProcess, EVENT_NODE_DOWN, EVENT_NODE_UP } from '../network/churn.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, type KadLookups } from '../kademlia/lookup.js'
import { mean, quantile, round, sortedCopy } from './stats.js'
import type { ChartSeries, InvariantCheck, ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld } from './world.js'

const EVENT_LOOKUP = 40
const EVENT_TICK = 41
const EVENT_CYCLON_MSG = 42
const EVENT_GOSSIP_MSG = 43
const EVENT_DIAL_FAIL = 44
const EVENT_PUBLISH = 45

interface LevelResult { meanSessionMin: number, lookupSuccess: number, lookups: number, timeoutsPerLookup: number, unreachableRpcsPerLookup: number, latencyP50Ms: number, gossipReach: number, announcements: number, duplicates: number, lookupUnfinished: number, events: number, meanViewSize: number }

export function runChurn (opts: ScenarioOptions): ScenarioResult {
  const n = opts.nodes
  const minutes = opts.extra?.minutes ?? 20
  const levels = opts.extra?.session !== undefined ? [opts.extra.session] : [Infinity, 120, 60, 30, 10]
  const lookupsPerLevel = opts.count ?? Math.min(5000, n)
  const t0 = performance.now()
  const out: LevelResult[] = []
  let setupMs = 0; let memory = { live: 0, heapUsed: 0, arrayBuffers: 0, forcedGc: false }
  for (let li = 0; li < levels.length; li++) {
    const r = runLevel(n, opts.seed, levels[li], minutes, lookupsPerLevel)
    out.push(r.result)
    setupMs += r.setupMs; memory = r.memory
    opts.onProgress?.(li + 1, levels.length)
  }
  const wallMs = performance.now() - t0
  const events = out.reduce((a, r) => a + r.events, 0)
  const x = (r: LevelResult): number => r.meanSessionMin === Infinity ? 0 : round(60 / r.meanSessionMin)
  const succ: ChartSeries = { label: 'lookup success', data: out.map(r => ({ x: x(r), y: r.lookupSuccess })) }
  const reach: ChartSeries = { label: 'gossip reach (share of online nodes)', data: out.map(r => ({ x: x(r), y: r.gossipReach })) }
  const invariants: InvariantCheck[] = []
  for (const r of out) {
    const tag = r.meanSessionMin === Infinity ? 'no churn' : `${r.meanSessionMin} min sessions`
    invariants.push({ name: `no announcement delivered twice to a node (${tag})`, ok: r.duplicates === 0, detail: `${r.duplicates} duplicates` })
    invariants.push({ name: `every lookup ended exactly once (${tag})`, ok: r.lookupUnfinished === 0, detail: `${r.lookupUnfinished} unfinished` })
  }
  const summary: Record<string, number> = {}
  for (const r of out) {
    const tag = r.meanSessionMin === Infinity ? 'static' : `session${r.meanSessionMin}m`
    summary[`${tag}.lookupSuccess`] = r.lookupSuccess
    summary[`${tag}.timeoutsPerLookup`] = r.timeoutsPerLookup
    summary[`${tag}.unreachableRpcsPerLookup`] = r.unreachableRpcsPerLookup
    summary[`${tag}.lookupP50Ms`] = r.latencyP50Ms
    summary[`${tag}.gossipReach`] = r.gossipReach
    summary[`${tag}.meanViewSize`] = r.meanViewSize
  }
  return {
    scenario: 'churn',
    seed: opts.seed,
    nodes: n,
    params: { minutes, levelsMeanSessionMin: levels.map(l => (l === Infinity ? 'none' : l)).join(','), lookupsPerLevel, availability: 0.8, paretoShape: 1.5, cyclonViewSize: 16, gossipFanout: 4, gossipTtl: 8 },
    summary,
    charts: [{ id: 'churn-success', title: 'Success vs churn', kind: 'line', xLabel: 'churn (sessions ended per node-hour; 0 = none)', yLabel: 'share', series: [succ, reach] }],
    invariants,
    notes: [
      'Sessions: Pareto(shape 1.5) with the given mean; offline gaps exponential with a quarter of it (80% availability).',
      'Lookups run the Kademlia model on tables built by joining: a departed node stays in tables (RPCs to it time out); a returning node rejoins with an empty table.',
      'Gossip: each node runs src/core/membership CyclonView (view 16, shuffle every 10 s) and Gossip (fanout 4, TTL 8); reach = online nodes that delivered / online nodes at publish time.'
    ],
    perf: {
      wallMs: round(wallMs), setupMs: round(setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(memory.live / n), heapUsedBytes: memory.heapUsed, arrayBufferBytes: memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: memory.forcedGc, rates: { lookupsPerWallSec: round(out.reduce((a, r) => a + r.lookups, 0) / (wallMs / 1000)) }
    }
  }
}

function runLevel (n: number, seed: number, meanSessionMin: number, minutes: number, lookupCount: number): { result: LevelResult, setupMs: number, memory: { live: number, heapUsed: number, arrayBuffers: number, forcedGc: boolean } } {
  const world = buildWorld(n, seed)
  const { q, net, ids, tables } = world
  const online = net.online
  const rng = world.rng.fork(); const coreRng = world.rng.fork().asCoreRng()
  const endMs = minutes * 60_000
  const churn = Number.isFinite(meanSessionMin) ? new ChurnProcess(q, world.rng.fork(), { meanSessionMs: meanSessionMin * 60_000, paretoShape: 1.5, meanOfflineMs: meanSessionMin * 60_000 / 4 }) : undefined
  churn?.start(online, 0)
  const lookups = world.lookups as KadLookups
  const maint = world.maintenance
  if (maint !== null) {
    maint.opts.until = 0
    for (let i = 0; i < n; i++) if (online[i] === 0) maint.leave(i) // churn's stationary start: these just left
  }
  // Membership machines, one pair per node (objects: the core API is per-node).
  const views: Array<CyclonView<number>> = []
  const gossips: Array<Gossip<number, number>> = []
  for (let i = 0; i < n; i++) {
    const v = new CyclonView<number>({ self: i, rng: coreRng, start: rng.next() * 10_000 })
    views.push(v)
    gossips.push(new Gossip<number, number>({ self: i, rng: coreRng, samplePeers: (k, ex) => v.sample(k, ex), seenCapacity: 256 }))
  }
  for (let i = 0; i < n; i++) {
    const boot: number[] = []
    while (boot.length < 8) { const p = rng.int(n); if (p !== i && !boot.includes(p)) boot.push(p) }
    views[i].addPeers(boot)
  }
  const nextTick = new Float64Array(n)
  const msgs: unknown[] = []; const freeMsg: number[] = []
  const putMsg = (m: unknown): number => { const id = freeMsg.pop(); if (id === undefined) { msgs.push(m); return msgs.length - 1 } msgs[id] = m; return id }
  const takeMsg = (id: number): unknown => { const m = msgs[id]; msgs[id] = undefined; freeMsg.push(id); return m }
  const announcements = 40
  const delivered = new Uint8Array(n * announcements)
  const reachCount = new Int32Array(announcements); const onlineAtPublish = new Int32Array(announcements)
  let duplicates = 0

  const schedule = (i: number): void => {
    const t = views[i].nextTimeout()
    if (t < nextTick[i] || nextTick[i] === 0) { nextTick[i] = t; q.push(t, EVENT_TICK, i, 0, 0) }
  }
  const flush = (i: number, now: number): void => {
    for (const m of views[i].pollOutbound()) {
      if (online[m.to] === 1 && net.partition[m.to] === net.partition[i]) q.push(now + net.oneWayMs(i, m.to), EVENT_CYCLON_MSG, m.to, i, putMsg(m.msg))
      else q.push(now + 1000, EVENT_DIAL_FAIL, i, m.to, 0)
    }
    for (const m of gossips[i].pollOutbound()) {
      if (net.delivers(i, m.to)) q.push(now + net.oneWayMs(i, m.to), EVENT_GOSSIP_MSG, m.to, i, putMsg(m.item))
      else if (online[m.to] === 0) q.push(now + 1000, EVENT_DIAL_FAIL, i, m.to, 0)
    }
    views[i].pollEvents()
    schedule(i)
  }
  for (let i = 0; i < n; i++) schedule(i)
  const warmupMs = 60_000
  const lookupGap = (endMs - warmupMs) / Math.max(1, lookupCount)
  q.push(warmupMs, EVENT_LOOKUP, 0, 0, 0)
  for (let a = 0; a < announcements; a++) q.push(warmupMs + (a + 0.5) * (endMs - warmupMs - 60_000) / announcements, EVENT_PUBLISH, a, 0, 0)
  let startedLookups = 0
  const e0 = q.pushed
  while (q.pop()) {
    const now = q.curTime; const kind = q.curKind; const a = q.curA
    if (kind === EVENT_RPC_DONE || kind === EVENT_RPC_FAIL) { lookups.handle(now, kind, a, q.curB, q.curC); continue }
    if (kind === EVENT_NODE_DOWN || kind === EVENT_NODE_UP) {
      churn?.handle(now, kind, a, online, endMs)
      if (kind === EVENT_NODE_DOWN) maint?.leave(a)
      if (kind === EVENT_NODE_UP) { maint?.join(now, a); nextTick[a] = 0; schedule(a) }
      continue
    }
    if (kind !== EVENT_TICK && kind < EVENT_LOOKUP && maint !== null) { maint.handle(now, kind, a, q.curB); continue }
    if (now > endMs && kind !== EVENT_CYCLON_MSG && kind !== EVENT_GOSSIP_MSG) { if (kind === EVENT_LOOKUP) continue; if (lookups.inFlight === 0) continue }
    if (kind === EVENT_TICK) {
      if (now !== nextTick[a] || online[a] === 0 || now > endMs) continue
      nextTick[a] = Infinity
      views[a].tick(now)
      flush(a, now)
    } else if (kind === EVENT_CYCLON_MSG) {
      const m = takeMsg(q.curC) as { type: 'shuffle-request' | 'shuffle-response', entries: Array<{ peer: number, age: number }> }
      if (online[a] === 0) continue
      if (m.type === 'shuffle-request') views[a].handleShuffleRequest(now, q.curB, m.entries)
      else views[a].handleShuffleResponse(now, q.curB, m.entries)
      flush(a, now)
    } else if (kind === EVENT_GOSSIP_MSG) {
      const item = takeMsg(q.curC) as GossipItem<number, number>
      if (online[a] === 0) continue
      if (gossips[a].handle(now, q.curB, item) === 'deliver') {
        const idx = a * announcements + item.body
        if (delivered[idx] === 1) duplicates++
        else { delivered[idx] = 1; reachCount[item.body]++ }
      }
      flush(a, now)
    } else if (kind === EVENT_DIAL_FAIL) {
      if (online[a] === 1) { views[a].peerFailed(now, q.curB); flush(a, now) }
    } else if (kind === EVENT_PUBLISH) {
      let origin = rng.int(n)
      while (online[origin] === 0) origin = rng.int(n)
      let up = 0
      for (let i = 0; i < n; i++) up += online[i]
      onlineAtPublish[a] = up - 1
      gossips[origin].publish(now, `ann-${a}`, a)
      delivered[origin * announcements + a] = 1
      flush(origin, now)
    } else if (kind === EVENT_LOOKUP) {
      let origin = rng.int(n); while (online[origin] === 0) origin = rng.int(n)
      let target = tables.servers[rng.int(tables.servers.length)]
      while (online[target] === 0 || target === origin) target = tables.servers[rng.int(tables.servers.length)]
      if (lookups.start(now, origin, target)) {
        startedLookups++
        if (startedLookups < lookupCount) q.push(now + rng.exp(lookupGap), EVENT_LOOKUP, 0, 0, 0)
      } else q.push(now + 5, EVENT_LOOKUP, 0, 0, 0)
    }
  }
  const reach = new Float64Array(announcements)
  for (let a = 0; a < announcements; a++) reach[a] = reachCount[a] / Math.max(1, onlineAtPublish[a])
  let viewSum = 0; let upN = 0
  for (let i = 0; i < n; i++) if (online[i] === 1) { viewSum += views[i].size; upN++ }
  const st = lookups.stats
  const finished = st.succeeded + st.failed
  return {
    result: {
      meanSessionMin,
      lookupSuccess: round(st.succeeded / Math.max(1, finished)),
      lookups: finished,
      timeoutsPerLookup: round(st.timeouts / Math.max(1, finished)),
      unreachableRpcsPerLookup: round(st.unreachableRpcs / Math.max(1, finished)),
      latencyP50Ms: round(quantile(sortedCopy(lookups.latencySamples()), 0.5)),
      gossipReach: round(mean(reach)),
      announcements,
      duplicates,
      lookupUnfinished: startedLookups - finished + lookups.inFlight,
      events: q.pushed - e0,
      meanViewSize: round(viewSum / Math.max(1, upN))
    },
    setupMs: world.setupMs,
    memory: world.memory
  }
}
