// The kad-dht settings the daemon runs with, in one place: src/net/host.ts passes them to
// @libp2p/kad-dht and the simulator's Kademlia model (simulator/kademlia) reads the same
// values, so the model cannot drift from the shipped table shape (test/sim/calibration.test.ts
// also builds a real host and checks its routing table against these).
export const KAD_PARAMS = {
  /** k: bucket size, and how many closest peers a query keeps and a FIND_NODE returns. */
  kBucketSize: 20,
  /**
   * Depth of kad-dht 16's routing-table trie. Its leaves split by absolute id prefix (not
   * only the local node's branch) while a full leaf is shallower than this. kad-dht's
   * default of 6 caps a table at 64 leaves of k; at 100,000 nodes a leaf then covers ~1,500
   * peers of which it keeps 20, and lookups stall inside the leaf (the simulator measured
   * 81% findPeer success with perfectly filled tables). 32 lets a leaf split until it holds
   * fewer than k peers at any size we aim for (10^8 nodes: ~27 bits), so a table keeps every
   * server it has talked to, as classic Kademlia keeps its own neighbourhood.
   */
  prefixLength: 32,
  /** Concurrent RPCs per query path. */
  alpha: 3,
  /** Disjoint query paths (kad-dht's default is alpha). */
  disjointPaths: 3,
  /** kad-dht 16 constants the model follows (not configurable in 16.4): full leaf -> ping this many oldest contacts. */
  pingOldContacts: 3,
  /** kad-dht 16: routing-table refresh and self-query period (TABLE_REFRESH_INTERVAL, QUERY_SELF_INTERVAL). */
  refreshIntervalMs: 5 * 60_000,
  /** kad-dht 16: refresh never generates keys for common prefix lengths above this (MAX_COMMON_PREFIX_LENGTH). */
  maxRefreshCpl: 15
} as const
