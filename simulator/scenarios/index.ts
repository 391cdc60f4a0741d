// The scenario registry the CLI, the bench and the tests share.
import { runLookup } from './lookup.js'
import { runCapability } from './capability.js'
import { runChurn } from './churn.js'
import { runGeo } from './geo.js'
import { runGrid } from './grid.js'
import { runMultipath } from './multipath.js'
import { runScaling } from './scaling.js'
import { runVivaldi } from './vivaldi.js'
import type { Scenario } from './types.js'

export const SCENARIOS: Record<string, { run: Scenario, describe: string, countName: string, defaultNodes: number, smallNodes: number, smallCount?: number, smallExtra?: Record<string, number> }> = {
  lookup: { run: runLookup, describe: 'N findPeer lookups on routing tables built by joining (--set tables=omniscient: the old reference; --set session=30: during churn)', countName: 'lookups (default: one per node)', defaultNodes: 10000, smallNodes: 2000 },
  capability: { run: runCapability, describe: 'nearest-provider queries with the core CapabilitySearch; records published and found only by DHT walks', countName: 'queries (default 300)', defaultNodes: 20000, smallNodes: 2000, smallCount: 30 },
  churn: { run: runChurn, describe: 'lookups (Kademlia model) and gossip (core Cyclon + Gossip) under heavy-tailed churn, one run per churn level', countName: 'lookups per churn level', defaultNodes: 2000, smallNodes: 300, smallCount: 200, smallExtra: { minutes: 5 } },
  geo: { run: runGeo, describe: 'latency stretch of geo-aware vs random relay and neighbour choice', countName: 'sender/recipient pairs (default 2000)', defaultNodes: 10000, smallNodes: 500, smallCount: 200 },
  grid: { run: runGrid, describe: 'a stream of grid jobs run by the shipped job session (busy providers, 30% churn), cost model vs random placement, makespan vs the offline lower bound', countName: 'jobs (default 200)', defaultNodes: 10000, smallNodes: 1000, smallCount: 30, smallExtra: { providerShare: 1 } },
  multipath: { run: runMultipath, describe: 'k-path delivery (core MultipathDelivery, choosePaths, ReceiveWindow) vs share of failed relays', countName: 'messages per (k, failed share) cell', defaultNodes: 10000, smallNodes: 500, smallCount: 100 },
  scaling: { run: runScaling, describe: 'the lookup scenario at growing sizes up to --nodes: scaling curves', countName: 'lookups per size (default 20000)', defaultNodes: 100000, smallNodes: 3000, smallCount: 500 },
  vivaldi: { run: runVivaldi, describe: 'Vivaldi coordinates (src/core/geo) converging: prediction error over time', countName: 'rounds (default 60)', defaultNodes: 5000, smallNodes: 300, smallCount: 20 }
}
