// The parameters and counters of the lookup model (simulator/kademlia/lookup.ts): k, alpha
// and paths are the daemon's (src/net/kad-params.ts); the rest are the model's own.
import { KAD_PARAMS } from '../../src/net/kad-params.js'

export interface LookupParams {
  /** Bucket size and result size (kad-dht kBucketSize). */
  k: number
  /** Concurrent RPCs per path. */
  alpha: number
  /** Disjoint paths per query (kad-dht 16: `disjointPaths ?? alpha`, kad-dht.js). */
  disjointPaths: number
  /** Round trips one RPC costs: dial (TCP + noise + muxer) plus request/response. */
  rpcRtts: number
  /** How long an RPC to a dead or unreachable peer takes to fail, ms. */
  rpcTimeoutMs: number
  /** Lookups in flight at once (slots). */
  maxConcurrent: number
  /** Drop a contact from the origin's table when an RPC to it fails (kad-dht 16 does not). */
  evictOnTimeout: boolean
  /** Tables learn from queries (origin adds responders, responder adds server queriers). */
  learn: boolean
  /**
   * The origin also adds every peer named in a response once it answers a ping (kad-dht's
   * network 'peer' event -> routing-table update). Off by default: it multiplies table
   * sizes; without it tables are smaller, so success and hops are on the safe side.
   */
  learnNamed: boolean
}

/** k, alpha and paths are the daemon's (src/net/kad-params.ts). */
export const DEFAULT_LOOKUP: LookupParams = { k: KAD_PARAMS.kBucketSize, alpha: KAD_PARAMS.alpha, disjointPaths: KAD_PARAMS.disjointPaths, rpcRtts: 3, rpcTimeoutMs: 5000, maxConcurrent: 512, evictOnTimeout: false, learn: true, learnNamed: false }

export interface LookupStats {
  started: number
  succeeded: number
  failed: number
  rpcs: number
  timeouts: number
  /** findPeer RPCs sent to a peer that was offline or cut off (counted at send time). */
  unreachableRpcs: number
  /** Candidates dropped because a lookup's candidate table was full. */
  overflow: number
  hops: Int32Array
  /** RPCs per finished findPeer, histogram (last bucket: 255 or more). */
  rpcHist: Int32Array
  /** getClosestPeers walks (joins, refreshes): how many ended and the RPCs they sent. */
  walks: number
  walkRpcs: number
  /** RPCs of walks that failed (timeouts). */
  walkTimeouts: number
  /** Pings of named peers before adding them (learnNamed). */
  pings: number
  /** Requests that found every slot busy and waited for one; the most waiting at once; total wait, ms of virtual time. */
  waited: number
  maxWaiting: number
  waitMs: number
  /** Waiting requests dropped when their turn came (admit hooks said no: the origin left meanwhile). */
  waitDropped: number
}
