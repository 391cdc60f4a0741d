// `multipath`: sealed-message delivery over k paths while a share of the relays silently
// drop everything. Senders run the core MultipathDelivery machine and choosePaths (relays
// in distinct geo cells, lowest predicted latency first); recipients run ReceiveWindow
// (src/core/routing). Relays and recipients decide what to do with a copy with the core's
// decideRelay, the function the daemon calls (src/net/overlay/envelopes.ts), from the same
// facts: is the recipient this node, hops left, and does this relay hold a connection to the
// recipient (each NAT'ed recipient keeps connections to 8 relays, which are the candidates
// a sender offers choosePaths; `--set connectionLoss=x` drops a share of those connections
// when a copy arrives, and the relay then answers UNREACHABLE).
// Swept over k and the failed share, with and without retries.
// Checked: no message reaches the application twice; every message ends delivered or failed.
import { cellIdOf } from '../../src/core/geo/cells.js'
import { MultipathDelivery, type AckStatus, type DeliveryEvent, type SendCommand } from '../../src/core/routing/delivery.js'
import { ReceiveWindow, decideRelay } from '../../src/core/routing/dedup.js'
import { choosePaths, type RelayCandidate } from '../../src/core/routing/paths.js'
import { quantile, round, sortedCopy } from './stats.js'
import type { ChartSeries, InvariantCheck, ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld, type World } from './world.js'

const EVENT_COPY_AT_RELAY = 50
const EVENT_COPY_AT_RECIPIENT = 51
const EVENT_ACK = 52
const EVENT_TICK = 53
const EVENT_SEND = 54

const CELL_LEVEL = 2

interface Cell { k: number, failedShare: number, retries: boolean, delivered: number, failed: number, twice: number, unresolved: number, latencies: number[], events: number }

export function runMultipath (opts: ScenarioOptions): ScenarioResult {
  const world = buildWorld(opts.nodes, opts.seed, { noDht: true })
  const messages = opts.count ?? 2000
  const ks = [1, 2, 3, 4]
  const shares = [0, 0.1, 0.2, 0.3, 0.5]
  const cells = Array.from({ length: world.pop.count }, (_, i) => cellIdOf(world.pop.latDeg[i], world.pop.lonDeg[i], CELL_LEVEL))
  const t0 = performance.now()
  const results: Cell[] = []
  let step = 0
  for (const retries of [false, true]) {
    for (const k of ks) {
      for (const f of shares) {
        results.push(runCell(world, cells, k, f, retries, messages, opts.extra?.connectionLoss ?? 0))
        opts.onProgress?.(++step, 2 * ks.length * shares.length)
      }
    }
  }
  const wallMs = performance.now() - t0
  const events = results.reduce((a, c) => a + c.events, 0)
  const series = (retries: boolean): ChartSeries[] => ks.map(k => ({ label: `k=${k}${retries ? ' with retries' : ''}`, data: results.filter(c => c.k === k && c.retries === retries).map(c => ({ x: c.failedShare, y: round(c.delivered / messages) })) }))
  const summary: Record<string, number> = {}
  for (const c of results) {
    const tag = `k${c.k}.failed${Math.round(c.failedShare * 100)}${c.retries ? '.retries' : ''}`
    summary[`${tag}.delivery`] = round(c.delivered / messages)
    if (c.latencies.length > 0) summary[`${tag}.p50Ms`] = round(quantile(sortedCopy(c.latencies), 0.5))
  }
  const invariants: InvariantCheck[] = [
    { name: 'no message delivered twice to the application', ok: results.every(c => c.twice === 0), detail: `${results.reduce((a, c) => a + c.twice, 0)} double deliveries` },
    { name: 'every message ends delivered or failed at the sender', ok: results.every(c => c.unresolved === 0), detail: `${results.reduce((a, c) => a + c.unresolved, 0)} unresolved` },
    { name: 'with no failed relays, every message arrives', ok: results.filter(c => c.failedShare === 0).every(c => c.delivered === messages), detail: results.filter(c => c.failedShare === 0).map(c => c.delivered).join(',') }
  ]
  return {
    scenario: 'multipath',
    seed: opts.seed,
    nodes: world.pop.count,
    params: { messages, ks: ks.join(','), failedShares: shares.join(','), relayCandidates: 24, ackTimeoutMs: 2000, expiryMs: 10_000, cellLevel: CELL_LEVEL },
    summary,
    charts: [
      { id: 'multipath-no-retry', title: 'Delivery vs failed relays (k copies, no retries)', kind: 'line', xLabel: 'share of relays that drop everything', yLabel: 'delivered', series: series(false) },
      { id: 'multipath-retry', title: 'Delivery vs failed relays (k copies, retries up to 4 attempts)', kind: 'line', xLabel: 'share of relays that drop everything', yLabel: 'delivered', series: series(true) }
    ],
    invariants,
    notes: [
      'No direct path is offered (recipients treated as NAT\'ed), so every copy goes through a relay; failed relays drop silently and only the ack timeout reveals them.',
      `Relay candidates: the ${RELAYS_PER_RECIPIENT} relays the recipient holds connections to; choosePaths prefers distinct level-${CELL_LEVEL} geo cells, lowest predicted latency first. Relays and the recipient decide with the core decideRelay (deliver / forward / unreachable / hop-limit).`
    ],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / world.pop.count), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc, rates: { messagesPerWallSec: round(results.length * messages / (wallMs / 1000)) }
    }
  }
}

const ACK_STATUS: AckStatus[] = ['ok', 'duplicate', 'unreachable', 'rejected']
const RELAYS_PER_RECIPIENT = 8

function runCell (world: World, cells: string[], k: number, failedShare: number, retries: boolean, messages: number, connectionLoss: number): Cell {
  const { q, net, pop } = world
  const rng = world.rng.fork()
  const n = pop.count
  const relays: number[] = []
  for (let i = 0; i < n; i++) if (pop.nat[i] === 0) relays.push(i)
  const failed = new Uint8Array(n)
  for (const r of relays) if (rng.next() < failedShare) failed[r] = 1
  // The relays each recipient holds a connection to (its relay reservations).
  const conns = new Map<number, number[]>()
  const connsOf = (r: number): number[] => {
    let c = conns.get(r)
    if (c === undefined) {
      c = []
      while (c.length < RELAYS_PER_RECIPIENT) { const v = relays[rng.int(relays.length)]; if (v !== r && !c.includes(v)) c.push(v) }
      conns.set(r, c)
    }
    return c
  }
  const senders = new Map<number, MultipathDelivery<number>>()
  const windows = new Map<number, ReceiveWindow<number>>()
  const nextTick = new Map<number, number>()
  const side: unknown[] = []
  const put = (x: unknown): number => { side.push(x); return side.length - 1 }
  const msgRecipient = new Int32Array(messages); const msgSender = new Int32Array(messages)
  const appDelivered = new Uint8Array(messages)
  const resolved = new Uint8Array(messages)
  const cell: Cell = { k, failedShare, retries, delivered: 0, failed: 0, twice: 0, unresolved: 0, latencies: [], events: 0 }
  const e0 = q.pushed
  const schedule = (s: number, m: MultipathDelivery<number>): void => {
    const t = m.nextTimeout()
    if (t !== Infinity && t < (nextTick.get(s) ?? Infinity)) { nextTick.set(s, t); q.push(t, EVENT_TICK, s, 0, 0) }
  }
  const flush = (s: number, now: number): void => {
    const m = senders.get(s) as MultipathDelivery<number>
    for (const cmd of m.pollOutbound()) {
      const msg = Number(cmd.id)
      const r = msgRecipient[msg]
      if (cmd.via === undefined) q.push(now + net.oneWayMs(s, r), EVENT_COPY_AT_RECIPIENT, msg, s, put(cmd))
      else q.push(now + net.oneWayMs(s, cmd.via), EVENT_COPY_AT_RELAY, msg, cmd.via, put(cmd))
    }
    for (const ev of m.pollEvents() as Array<DeliveryEvent<number>>) {
      const msg = Number(ev.id)
      if (resolved[msg] === 1) continue
      resolved[msg] = 1
      if (ev.type === 'delivered') cell.latencies.push(ev.latencyMs); else cell.failed++
    }
    schedule(s, m)
  }
  for (let i = 0; i < messages; i++) q.push(i * 10, EVENT_SEND, i, 0, 0)
  while (q.pop()) {
    const now = q.curTime; const kind = q.curKind; const msg = q.curA
    if (kind === EVENT_SEND) {
      const s = rng.int(n)
      let r = rng.int(n); while (r === s) r = rng.int(n)
      msgSender[msg] = s; msgRecipient[msg] = r
      const cands: Array<RelayCandidate<number>> = []
      for (const v of connsOf(r)) {
        if (v === s) continue
        cands.push({ peer: v, cell: cells[v], predictedMs: net.baseOneWayMs(s, v) + net.baseOneWayMs(v, r) })
      }
      const { paths, spares } = choosePaths({ k, candidates: cands, exclude: [s, r] })
      let m = senders.get(s)
      if (m === undefined) { m = new MultipathDelivery<number>({ maxAttempts: retries ? Math.max(4, k) : k }); senders.set(s, m) }
      m.send(now, { id: String(msg), recipient: r, expiresAt: now + 10_000 }, paths, spares)
      flush(s, now)
    } else if (kind === EVENT_COPY_AT_RELAY) {
      const relay = q.curB
      if (failed[relay] === 1) continue // a failed relay drops the copy silently
      const cmd = side[q.curC] as SendCommand<number>
      const r = msgRecipient[msg]
      const decision = decideRelay({ recipientIsSelf: relay === r, hopsLeft: cmd.hopsLeft, recipientReachable: connsOf(r).includes(relay) && (connectionLoss === 0 || rng.next() >= connectionLoss) })
      if (decision === 'forward') q.push(now + net.oneWayMs(relay, r), EVENT_COPY_AT_RECIPIENT, msg, relay, put({ ...cmd, hopsLeft: cmd.hopsLeft - 1 }))
      else if (decision !== 'deliver') q.push(now + net.oneWayMs(relay, msgSender[msg]), EVENT_ACK, msg, cmd.pathId, decision === 'unreachable' ? 2 : 3)
    } else if (kind === EVENT_COPY_AT_RECIPIENT) {
      const cmd = side[q.curC] as SendCommand<number>
      const r = msgRecipient[msg]
      if (decideRelay({ recipientIsSelf: true, hopsLeft: cmd.hopsLeft, recipientReachable: true }) !== 'deliver') continue
      let w = windows.get(r)
      if (w === undefined) { w = new ReceiveWindow<number>(1024); windows.set(r, w) }
      const verdict = w.check(now, `${msgSender[msg]}:${msg}`, now + 10_000, q.curB)
      let status: AckStatus = 'duplicate'
      if (verdict === 'new') {
        status = 'ok'
        if (appDelivered[msg] === 1) cell.twice++
        appDelivered[msg] = 1; cell.delivered++
      }
      // The ack goes back the way the copy came (through the same relay, if any).
      const back = cmd.via === undefined ? net.oneWayMs(r, msgSender[msg]) : net.oneWayMs(r, cmd.via) + (failed[cmd.via] === 1 ? Infinity : net.oneWayMs(cmd.via, msgSender[msg]))
      if (Number.isFinite(back)) q.push(now + back, EVENT_ACK, msg, cmd.pathId, ACK_STATUS.indexOf(status))
    } else if (kind === EVENT_ACK) {
      const s = msgSender[msg]
      const m = senders.get(s) as MultipathDelivery<number>
      m.handleAck(now, String(msg), q.curB, ACK_STATUS[q.curC])
      flush(s, now)
    } else if (kind === EVENT_TICK) {
      const s = msg
      if (nextTick.get(s) !== now) continue
      nextTick.delete(s)
      const m = senders.get(s) as MultipathDelivery<number>
      m.tick(now)
      flush(s, now)
    }
  }
  for (let i = 0; i < messages; i++) if (resolved[i] === 0) cell.unresolved++
  cell.events = q.pushed - e0
  return cell
}
