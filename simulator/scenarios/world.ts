// Builds the common world of a scenario: placed nodes, the virtual network, Kademlia ids
// and routing tables, the event queue and the seeded random streams (one per subsystem,
// so adding draws in one place does not shift another's).
import { EventQueue } from '../engine/event-queue.js'
import { measureLiveMemory, type LiveMemory } from '../engine/memory.js'
import { SimRandom } from '../engine/random.js'
import { KadIds } from '../kademlia/ids.js'
import { RoutingTables } from '../kademlia/table.js'
import { VirtualNetwork, type NetworkOptions } from '../network/network.js'
import { DEFAULT_POPULATION, placeNodes, type Population, type PopulationOptions } from '../network/population.js'

export interface World {
  rng: SimRandom
  pop: Population
  net: VirtualNetwork
  ids: KadIds
  tables: RoutingTables
  q: EventQueue
  setupMs: number
  /** CPU time of the setup (user + system), ms: unlike wall time, not inflated by other load. */
  setupCpuMs: number
  memory: LiveMemory
}

export interface WorldOptions {
  population?: Partial<PopulationOptions>
  network?: Partial<NetworkOptions>
  k?: number
  /** kad-dht 16's absolute-prefix trie of this depth instead of classic k-buckets (0 = classic). */
  triePrefixLength?: number
  /** Skip the Kademlia tables (scenarios that do not route through the DHT). */
  noDht?: boolean
}

export function buildWorld (nodes: number, seed: number, opts: WorldOptions = {}): World {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const rng = new SimRandom(seed)
  const placeRng = rng.fork(); const netRng = rng.fork(); const idRng = rng.fork(); const tableRng = rng.fork()
  const pop = placeNodes(nodes, placeRng, { ...DEFAULT_POPULATION, ...opts.population })
  const net = new VirtualNetwork(pop, netRng, opts.network)
  const ids = new KadIds(opts.noDht === true ? 1 : nodes, idRng)
  const isServer = new Uint8Array(nodes)
  for (let i = 0; i < nodes; i++) isServer[i] = pop.nat[i] === 1 ? 0 : 1
  const tables = (opts.triePrefixLength ?? 0) > 0 && opts.noDht !== true
    ? RoutingTables.trie(ids, isServer, opts.k ?? 20, opts.triePrefixLength as number, tableRng)
    : new RoutingTables(ids, opts.noDht === true ? new Uint8Array(1) : isServer, opts.k ?? 20, tableRng)
  const q = new EventQueue(1 << 16)
  const setupMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const setupCpuMs = (cpu.user + cpu.system) / 1000
  const memory = measureLiveMemory()
  return { rng, pop, net, ids, tables, q, setupMs, setupCpuMs, memory }
}
