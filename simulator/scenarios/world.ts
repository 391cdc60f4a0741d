// Builds the common world of a scenario: placed nodes, the virtual network, Kademlia ids
// and routing tables, the event queue and the seeded random streams (one per subsystem,
// so adding draws in one place does not shift another's).
//
// Routing tables are built by the protocol by default: nodes join one after another
// (Poisson arrivals), each from 1-3 bootstrap servers, run kad-dht's self-query and
// refresh walk, and optionally every node then runs `settleRounds` refresh rounds
// (self-query + refresh, as kad-dht does every 5 minutes; default none). `tables: 'omniscient'` fills classic k-buckets
// from global knowledge instead (the previous model, the reference in bench/sim.ts).
import { EventQueue } from '../engine/event-queue.js'
import { measureLiveMemory, type LiveMemory } from '../engine/memory.js'
import { SimRandom } from '../engine/random.js'
import { KAD_PARAMS } from '../../src/net/kad-params.js'
import { KadIds } from '../kademlia/ids.js'
import { EVENT_JOIN, EVENT_REFRESH, EVENT_WALK_RETRY, KadMaintenance } from '../kademlia/join.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, KadLookups, type LookupParams } from '../kademlia/lookup.js'
import type { RoutingView } from '../kademlia/routing.js'
import { RoutingTables } from '../kademlia/table.js'
import { TrieTables } from '../kademlia/trie-tables.js'
import { VirtualNetwork, type NetworkOptions } from '../network/network.js'
import { DEFAULT_POPULATION, placeNodes, type Population, type PopulationOptions } from '../network/population.js'

export interface JoinFigures {
  /** Wall time of the joins and settle rounds, ms. */
  wallMs: number
  cpuMs: number
  /** Virtual time the build took, ms. */
  virtualMs: number
  /** getClosestPeers walks (self-queries and refreshes) and their RPCs. */
  walks: number
  walkRpcs: number
  events: number
  meanContacts: number
  /** Most walks in flight at once during the joins (bounded by buildSlots). */
  maxWalksInFlight: number
  /** kad-dht full-leaf decisions during the build. */
  rejectedFull: number
  evicted: number
}

export interface World {
  rng: SimRandom
  pop: Population
  net: VirtualNetwork
  ids: KadIds
  tables: RoutingView
  /** The trie tables when built by joining (null for omniscient or noDht). */
  trie: TrieTables | null
  /** The lookup engine the joins ran on (shared by the scenario), and the maintenance driver. */
  lookups: KadLookups | null
  maintenance: KadMaintenance | null
  isServer: Uint8Array
  /** Nodes that exist at the start (ids beyond are reserved for nodes that join later). */
  initialNodes: number
  q: EventQueue
  setupMs: number
  /** CPU time of the setup (user + system), ms: unlike wall time, not inflated by other load. */
  setupCpuMs: number
  join: JoinFigures | null
  memory: LiveMemory
}

export type TableMode = 'joined' | 'omniscient'

export interface WorldOptions {
  population?: Partial<PopulationOptions>
  network?: Partial<NetworkOptions>
  /** Lookup parameters for the joins and the scenario (k, alpha, paths, timeouts). */
  lookup?: Partial<LookupParams>
  /** 'joined' (default): built by the protocol; 'omniscient': the old global fill (reference). */
  tables?: TableMode
  /** kad-dht trie depth (default: the daemon's, src/net/kad-params.ts). */
  prefixLength?: number
  /** Mean gap between joins, ms of virtual time. */
  joinGapMs?: number
  /**
   * Walks in flight during the build (default BUILD_SLOTS): a new join waits while this many
   * run. A simulator limit, not a protocol one (see BUILD_SLOTS); 489 gives the old builds.
   */
  buildSlots?: number
  /** Refresh rounds (self-query + refresh walks) every node runs after the last join (default 0: tables as the joins left them). */
  settleRounds?: number
  /** Ids reserved for nodes that join during the run (churn). */
  extraIds?: number
  /** Skip the Kademlia tables (scenarios that do not route through the DHT). */
  noDht?: boolean
  onProgress?: (done: number, total: number) => void
  /** Called with the join figures so far at least every 10,000 joins (time- or memory-capped runs). */
  onBuildProgress?: (p: BuildProgress) => void
}

export interface BuildProgress {
  joined: number
  total: number
  /** Events pushed since the joins began. */
  events: number
  /** Virtual time reached, ms. */
  virtualMs: number
  /** Table pool slots handed out (4 bytes each), and its allocated length. */
  poolSlotsUsed: number
  poolSlots: number
}

/**
 * Joins overlap in the build only as far as this many walks in flight. kad-dht has no such
 * limit, and none is needed: a join's walks see whatever tables the earlier joins left,
 * however many overlap (seed-1 runs at 100k give the same success, hops and RPCs within
 * noise at 40 and 489). Few walks at once keep their slots' state (seen sets, candidates,
 * path queues) in cache between replies: ~36% less CPU per join than 489.
 */
export const BUILD_SLOTS = 40

export function buildWorld (nodes: number, seed: number, opts: WorldOptions = {}): World {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const rng = new SimRandom(seed)
  const placeRng = rng.fork(); const netRng = rng.fork(); const idRng = rng.fork(); const tableRng = rng.fork()
  const total = nodes + (opts.extraIds ?? 0)
  const pop = placeNodes(total, placeRng, { ...DEFAULT_POPULATION, ...opts.population })
  const net = new VirtualNetwork(pop, netRng, opts.network)
  const noDht = opts.noDht === true
  const ids = new KadIds(noDht ? 1 : total, idRng)
  const isServer = new Uint8Array(total)
  for (let i = 0; i < total; i++) isServer[i] = pop.nat[i] === 1 ? 0 : 1
  const q = new EventQueue(1 << 16)
  const k = opts.lookup?.k ?? KAD_PARAMS.kBucketSize
  let tables: RoutingView; let trie: TrieTables | null = null
  let lookups: KadLookups | null = null; let maintenance: KadMaintenance | null = null
  let join: JoinFigures | null = null
  const mode = opts.tables ?? 'joined'
  if (noDht) {
    tables = new RoutingTables(ids, new Uint8Array(1), k, tableRng)
  } else if (mode === 'omniscient') {
    tables = new RoutingTables(ids, isServer, k, tableRng)
    lookups = new KadLookups(q, net, ids, tables, rng.fork(), { ...opts.lookup, learn: false }, 1024)
  } else {
    let ns = 0
    for (let i = 0; i < total; i++) ns += isServer[i]
    const servers = new Int32Array(ns)
    ns = 0
    for (let i = 0; i < total; i++) if (isServer[i] === 1) servers[ns++] = i
    trie = new TrieTables(ids, servers, k, opts.prefixLength ?? KAD_PARAMS.prefixLength, net.online, tableRng.fork(), total * 64)
    tables = trie
    lookups = new KadLookups(q, net, ids, trie, rng.fork(), opts.lookup, 1024)
    lookups.isServer = isServer
    maintenance = new KadMaintenance(q, lookups, trie, ids, net.online, isServer, tableRng.fork(), { until: 0 })
    join = joinAll(q, lookups, maintenance, trie, net, nodes, tableRng.fork(), opts)
  }
  // Nodes reserved for later joins are offline until they join.
  if (!noDht && mode === 'joined') for (let i = nodes; i < total; i++) net.online[i] = 0
  const setupMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const setupCpuMs = (cpu.user + cpu.system) / 1000
  const memory = measureLiveMemory()
  return { rng, pop, net, ids, tables, trie, lookups, maintenance, isServer, initialNodes: nodes, q, setupMs, setupCpuMs, join, memory }
}

/** Runs the joins of nodes 0..n-1 in random order, then the settle rounds; returns the figures. */
function joinAll (q: EventQueue, lookups: KadLookups, maint: KadMaintenance, trie: TrieTables, net: VirtualNetwork, n: number,
  rng: SimRandom, opts: WorldOptions): JoinFigures {
  const t0 = performance.now(); const cpu0 = process.cpuUsage(); const e0 = q.pushed
  net.online.fill(0)
  const order = new Int32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  for (let i = n - 1; i > 0; i--) { const j = rng.int(i + 1); const t = order[i]; order[i] = order[j]; order[j] = t }
  const gap = opts.joinGapMs ?? 2
  const buildSlots = Math.max(1, Math.min(opts.buildSlots ?? BUILD_SLOTS, lookups.p.maxConcurrent - 23))
  let next = 0
  q.push(0, EVENT_JOIN, 0, 0, 0)
  const rounds = opts.settleRounds ?? 0
  let settleUntil = -1
  let maxIn = 0
  const progressEvery = Math.max(1, Math.min(10_000, Math.floor(n / 50))); let nextProgress = 0
  while (q.pop()) {
    const now = q.curTime; const kind = q.curKind
    if (kind === EVENT_RPC_DONE || kind === EVENT_RPC_FAIL) lookups.handle(now, kind, q.curA, q.curB, q.curC)
    else if (kind === EVENT_JOIN) {
      // Lookup slots are a simulator limit, not a protocol one: a join waits for free slots
      // (stretching virtual time, which the build does not measure) instead of retrying walks.
      if (lookups.inFlight >= buildSlots) { q.push(now + 20, EVENT_JOIN, 0, 0, 0); continue }
      maint.join(now, order[next++])
      if (lookups.inFlight > maxIn) maxIn = lookups.inFlight // a join adds a walk; a walk ending starts at most one
      if (next < n) q.push(now + rng.exp(gap), EVENT_JOIN, 0, 0, 0)
    } else if (kind === EVENT_REFRESH || kind === EVENT_WALK_RETRY) maint.handle(now, kind, q.curA, q.curB)
    if (settleUntil < 0 && maint.joinsDone === n) {
      // Every node has joined: each runs `rounds` refresh rounds, spread over one interval each.
      const interval = maint.opts.refreshIntervalMs
      settleUntil = now + rounds * interval
      maint.opts.until = settleUntil
      if (rounds > 0) for (let i = 0; i < n; i++) q.push(now + rng.next() * interval, EVENT_REFRESH, i, maint.epochOf(i), 0)
    }
    if (maint.joinsDone >= nextProgress) {
      opts.onProgress?.(maint.joinsDone, n)
      opts.onBuildProgress?.({ joined: maint.joinsDone, total: n, events: q.pushed - e0, virtualMs: now, poolSlotsUsed: trie.slotsUsed, poolSlots: trie.poolLength })
      nextProgress = maint.joinsDone + progressEvery
    }
  }
  const cpu = process.cpuUsage(cpu0)
  const t = trie.totals()
  return {
    wallMs: performance.now() - t0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    virtualMs: q.curTime,
    walks: lookups.stats.walks,
    walkRpcs: lookups.stats.walkRpcs,
    events: q.pushed - e0,
    meanContacts: t.contacts / n,
    maxWalksInFlight: maxIn,
    rejectedFull: trie.stats.rejectedFull,
    evicted: trie.stats.evicted
  }
}
