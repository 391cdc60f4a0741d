// The capability index on kad-dht: a compute peer signs its capability record and provides
// itself under (capability, cell) keys at a few cell levels; a query walks the plan of
// CapabilitySearch (own cell, its rings, coarser cells), runs the lookups of a step in parallel,
// fetches each new provider's signed record over /dbc/capability/1.0.0 as providers stream in,
// and stops as soon as it has `want` verified matches. Verified records are cached, so a
// repeated query is answered locally.
import type { Libp2p, Stream, Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { FramedStream } from '../framed.js'
import { guardedHandle, wasHandled } from '../guard/index.js'
import { dbc } from '../../wire/gen/wire.js'
import { decodeMessage } from '../../wire/decode.js'
import { encodeFrame } from '../../wire/frame.js'
import { WireError } from '../../errors.js'
import { nodeSuite } from '../../crypto/suite.js'
import {
  buildCapabilityRecord, signCapabilityRecord, normaliseCapability, verifyCapability, indexKeysOf, matchesQuery,
  CapabilitySearch, CapabilityStore, type CapabilityInit, type CapabilityQuery, type SearchResult, type SignedCapability, type CapabilityRecord
} from '../../core/capability/index.js'

export const CAPABILITY_PROTOCOL = '/dbc/capability/1.0.0'
const MAX_FRAME = 256 * 1024
const RAW = 0x55

type Host = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'contentRouting' | 'peerStore'>

export interface CapabilityIndexInit {
  secretKey: Uint8Array
  /** Caller location for queries that do not give one. */
  location?: { lat: number, lon: number }
  /** Per-lookup timeout for a DHT step, ms. */
  stepTimeoutMs?: number
  /** Record fetch timeout, ms. */
  fetchTimeoutMs?: number
  /** Steps run at once (the plan's first few rings overlap to cut latency). */
  parallelSteps?: number
  /** A peer sent a lookup request that breaks the protocol (the overlay charges its score). */
  onBadInput?: (peer: string, offence: 'malformed' | 'oversized') => void
  now?: () => number
}

export interface QueryOptions {
  /** Skip the cache and search the DHT. */
  fresh?: boolean
  signal?: AbortSignal
}

export interface QueryReport {
  results: SearchResult[]
  fromCache: boolean
  steps: number
  lookups: number
  fetched: number
  rejected: number
  ms: number
  /** When the search had `want` results (ms from the start); undefined if it never did. */
  enoughAtMs?: number
}

export class CapabilityIndex {
  readonly cache = new CapabilityStore(10_000)
  private own: { record: CapabilityRecord, signed: SignedCapability } | undefined
  private started = false
  private readonly now: () => number

  constructor (private readonly host: Host, private readonly init: CapabilityIndexInit) {
    this.now = init.now ?? Date.now
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await guardedHandle(this.host, CAPABILITY_PROTOCOL, (s, c, g) => { void this.serve(s, c, g.open({ maxFrameBytes: 16 * 1024 })) }, { maxInboundStreams: 64, runOnLimitedConnection: true, expectsRequest: true })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.host.unhandle(CAPABILITY_PROTOCOL)
  }

  /** Signs our record and provides it under every (capability, cell) key. Returns the keys provided. */
  async publish (init: Omit<CapabilityInit, 'peerId' | 'issuedAt' | 'seq'> & { seq?: number, capabilities?: string[] }, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const seq = init.seq ?? (this.own === undefined ? 1 : this.own.record.seq + 1)
    const record = buildCapabilityRecord({ ...init, peerId: this.host.peerId.toMultihash().bytes, issuedAt: this.now(), seq })
    const signed = signCapabilityRecord(record, this.init.secretKey, nodeSuite.sign)
    this.own = { record, signed }
    // `capabilities` limits which index keys are provided (all of the record's by default).
    const keys = indexKeysOf(record).filter(k => init.capabilities === undefined || init.capabilities.map(normaliseCapability).includes(k.capability))
    await Promise.all(keys.map(async k => { await this.host.contentRouting.provide(toCid(k.key), { signal: opts.signal }) }))
    return keys.map(k => `${k.capability}@${k.cell}`)
  }

  ownRecord (): SignedCapability | undefined { return this.own?.signed }

  /** Peers matching `query` near its location (or ours), nearest first. */
  async query (query: CapabilityQuery, opts: QueryOptions = {}): Promise<QueryReport> {
    const started = performance.now()
    const lat = query.latE4 != null && query.latE4 !== 0 ? query.latE4 / 1e4 : (this.init.location?.lat ?? 0)
    const lon = query.lonE4 != null && query.lonE4 !== 0 ? query.lonE4 / 1e4 : (this.init.location?.lon ?? 0)
    const search = new CapabilitySearch({ query, lat, lon, verify: nodeSuite.verify, maxRing: query.maxRing ?? undefined })
    const now = this.now()
    if (opts.fresh !== true) {
      for (const e of this.cache.matching(now, query)) search.addVerified(e.record, e.signed)
      if (search.done() && search.results().length >= search.want) {
        return { results: search.results(), fromCache: true, steps: 0, lookups: 0, fetched: 0, rejected: 0, ms: performance.now() - started }
      }
    }
    const report: { steps: number, lookups: number, fetched: number, enoughAtMs?: number } = { steps: 0, lookups: 0, fetched: 0 }
    const controller = new AbortController()
    const signal = opts.signal === undefined ? controller.signal : AbortSignal.any([controller.signal, opts.signal])
    const asked = new Set<string>([this.host.peerId.toString()])
    const fetches: Array<Promise<void>> = []
    const onProvider = (peer: PeerId, addrs: Multiaddr[]): void => {
      const id = peer.toString()
      if (asked.has(id)) return
      asked.add(id)
      // Keep the provider record's addresses: without them the dial would start a DHT peer lookup.
      const known = addrs.length === 0 ? Promise.resolve() : this.host.peerStore.merge(peer, { multiaddrs: addrs }).then(() => {}, () => {})
      fetches.push(known.then(async () => await this.fetch(peer, query, signal)).then(records => {
        report.fetched++
        search.addRecords(this.now(), records)
        for (const r of search.results()) this.cache.put(this.now(), r.record, r.signed)
        if (search.results().length >= search.want && !controller.signal.aborted) {
          report.enoughAtMs = performance.now() - started
          controller.abort()
        }
      }, () => {}))
    }
    const parallel = Math.max(1, this.init.parallelSteps ?? 2)
    while (!search.done() && !signal.aborted) {
      const batch = []
      for (let i = 0; i < parallel; i++) { const s = search.nextStep(); if (s !== undefined) batch.push(s) }
      if (batch.length === 0) break
      report.steps += batch.length
      // Stop this batch's lookups once enough providers are known to (probably) satisfy the query:
      // providers come back within the first hops, while a full lookup runs on for hundreds of ms.
      // If their records fall short, the batch is run again to completion.
      for (const early of [true, false]) {
        const batchStop = new AbortController()
        const askedBefore = asked.size
        const stepSignal = AbortSignal.any([signal, batchStop.signal, AbortSignal.timeout(this.init.stepTimeoutMs ?? 5000)])
        const need = search.want - search.results().length
        await Promise.all(batch.flatMap(step => step.keys.map(async key => {
          report.lookups++
          try {
            for await (const p of this.host.contentRouting.findProviders(toCid(key), { signal: stepSignal })) {
              onProvider(p.id, p.multiaddrs)
              if (early && asked.size - askedBefore >= need) batchStop.abort()
            }
          } catch {}
        })))
        await Promise.all(fetches)
        if (search.done() || signal.aborted || !batchStop.signal.aborted) break
      }
    }
    await Promise.all(fetches)
    return { results: search.results(), fromCache: false, ...report, rejected: search.rejected.length, ms: performance.now() - started }
  }

  private async fetch (peer: PeerId, query: CapabilityQuery, signal: AbortSignal): Promise<SignedCapability[]> {
    // one small request and answer: fine over a relayed (limited) connection, the only way to a NATed provider
    const stream = await this.host.dialProtocol(peer, CAPABILITY_PROTOCOL, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.init.fetchTimeoutMs ?? 3000)]), runOnLimitedConnection: true })
    const framed = new FramedStream(stream, { maxFrameBytes: MAX_FRAME })
    try {
      await framed.write(dbc.capability.v1.CapabilityLookupRequest.encode({ query }).finish())
      const frame = await framed.readRequired({ signal: AbortSignal.timeout(this.init.fetchTimeoutMs ?? 3000) })
      const d = decodeMessage(dbc.capability.v1.CapabilityLookupResponse, frame, { maxRepeated: 16 })
      await framed.close().catch(() => {})
      return d.ok ? d.value.records as SignedCapability[] : []
    } catch (err) {
      framed.abort(err as Error)
      throw err
    }
  }

  private async serve (stream: Stream, connection: Connection, framed: FramedStream): Promise<void> {
    try {
      const frame = await framed.readRequired({ signal: AbortSignal.timeout(5000) })
      const d = decodeMessage(dbc.capability.v1.CapabilityLookupRequest, frame)
      if (!d.ok) throw d.error
      const records: SignedCapability[] = []
      const own = this.own
      if (d.ok && own !== undefined && own.record.expiresAt > this.now() && matchesQuery(own.record, d.value.query ?? {})) records.push(own.signed)
      await framed.write(dbc.capability.v1.CapabilityLookupResponse.encode({ records }).finish())
      await framed.close()
    } catch (err) {
      if (err instanceof WireError) {
        // bad input costs the sender, and it is told why before the stream is dropped
        if (!wasHandled(err)) this.init.onBadInput?.(connection.remotePeer.toString(), err.code === 'FRAME_TOO_LARGE' ? 'oversized' : 'malformed')
        try { stream.send(encodeFrame(dbc.common.v1.ProtocolError.encode({ code: err.code, message: `capability lookup refused: ${err.message}` }).finish())) } catch {}
      }
      framed.abort(err as Error)
    }
  }

  /** Adds a record learnt elsewhere (gossip, walks) to the cache after verifying it. */
  learn (bytes: Uint8Array | SignedCapability): boolean {
    const v = verifyCapability(bytes, { now: this.now(), verify: nodeSuite.verify })
    if (!v.ok) return false
    const o = this.cache.put(this.now(), v.record, v.signed)
    return o === 'new' || o === 'updated'
  }
}

export function toCid (multihash: Uint8Array): CID {
  return CID.createV1(RAW, Digest.decode(multihash))
}
