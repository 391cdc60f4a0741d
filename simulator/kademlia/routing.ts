// What the lookup model needs from a set of routing tables. Two implementations:
// TrieTables (trie-tables.ts: kad-dht 16's table, filled by the protocol: the default)
// and RoutingTables (table.ts: omniscient classic k-buckets, the previous model, kept as
// the reference `--set tables=omniscient`).
export interface RoutingView {
  /** Bucket size (kad-dht kBucketSize). */
  readonly k: number
  /** DHT servers in id order: the only nodes that can be contacts. */
  readonly servers: Int32Array
  /**
   * n's k contacts XOR-closest to the key (hi 32 bits, lo 21 bits), never `exclude`; returns the count.
   * `nb`, when given, is ids.lowerBoundHiLo(hi, lo) (a lookup computes it once, not per reply).
   */
  closestToKey: (n: number, hi: number, lo: number, exclude: number, out: Int32Array, nb?: number) => number
  /** When present: the XOR distances of the contacts the last closestToKey returned, in the same order. */
  readonly outDist?: Float64Array
  /** Contacts in n's table. */
  size: (n: number) => number
  /** A protocol event told n about server c (responder, querier, bootstrap). Omniscient tables ignore it. */
  learn: (n: number, c: number) => boolean
  /** n drops contact c. */
  forget: (n: number, c: number) => boolean
}
