// The stream-flood attack of issue 12: one hostile peer opens many concurrent streams across the
// task, relay and all-reduce protocols, declares the protocol's largest frame on each, and then
// either sends all but the last byte and holds the stream ('hold'), or trickles a few bytes a
// second ('trickle', slowloris), or half of each ('mixed'); beside it many throw-away identities do the same at a smaller
// scale. Used by test/security/flood.test.ts and bench/load.ts (runFloodScenario, below).
//
// One libp2p connection carries at most ~1,000 yamux streams and, per protocol, what the node's
// handler allows (maxInboundStreams), so the one hostile peer uses several connections under
// the same key (one host each). Every stream's fate is recorded: opened, refused at opening,
// reset by the node later, or still held at the end.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import type { PrivateKey } from '@libp2p/interface'
import { createHost, type Host } from '../../src/net/host.js'
import { encodeFramePrefix } from '../../src/wire/frame.js'
import { TASK_MAX_FRAME } from '../../src/net/tasks.js'
import { TRAINING_MAX_FRAME } from '../../src/training/transport.js'
import { DEFAULT_MAX_ENVELOPE_BYTES } from '../../src/crypto/envelope.js'
import { newIdentity } from '../fuzz/live-fuzzer.js'
import type { LocalNetwork } from '../../demo/network.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startSecurityNet, runHonestJob, withHonestJobs, type HonestRun, sampleVitals, watchPenalties, statusLatency, rssMiB } from '../security/harness.js'

/** The flooded protocols and the largest frame each accepts (the relay's is the envelope cap + 64: src/net/overlay/envelopes.ts). */
export const FLOOD_PROTOCOLS = {
  '/dbc/task/1.0.0': TASK_MAX_FRAME,
  '/dbc/relay/1.0.0': DEFAULT_MAX_ENVELOPE_BYTES + 64,
  '/dbc/allreduce/1.0.0': TRAINING_MAX_FRAME
} as const
export type FloodProtocol = keyof typeof FLOOD_PROTOCOLS
const PROTOCOLS = Object.keys(FLOOD_PROTOCOLS) as FloodProtocol[]
/** Per-connection stream caps the node had before issue 12 (the attacker spreads streams to fit them). */
const PER_CONNECTION: Record<FloodProtocol, number> = { '/dbc/task/1.0.0': 1024, '/dbc/relay/1.0.0': 32, '/dbc/allreduce/1.0.0': 256 }
const YAMUX_STREAMS = 900

export interface FloodOptions {
  target: { peerId: string, addr: string }
  mode: 'hold' | 'trickle' | 'mixed'
  /** Streams of the one big hostile peer (spread evenly over the three protocols). */
  mainStreams: number
  /** Small hostile identities, each with `streamsPerIdentity` streams. */
  identities: number
  streamsPerIdentity: number
  /** How long the streams are held (or trickled) once open and, in 'hold', filled (ms). */
  holdMs: number
  /** 'hold': most bytes sent on one stream (default: the declared frame - 1). */
  maxStreamBytes?: number
  /** Attacker-side safety: bytes all streams together may send (default 3 GiB). */
  maxTotalBytes?: number
  /** 'trickle': bytes per second per stream (default 4). */
  trickleBytesPerSec?: number
  /** Checked while filling: true stops sending more (e.g. the target's RSS passed a safety limit). */
  shouldStop?: () => boolean
  signal?: AbortSignal
  log?: (s: string) => void
}

export interface StreamTally { attempted: number, opened: number, refused: number, resetByNode: number, heldToEnd: number }
export interface FloodReport {
  mode: 'hold' | 'trickle' | 'mixed'
  mainPeerId: string
  mainConnections: number
  /** Connections the attackers' hosts opened in all (re-dials after the node hung up included). */
  connectionsOpened: number
  byProtocol: Record<FloodProtocol, StreamTally>
  main: StreamTally
  small: StreamTally
  bytesSent: number
  /** The attacker stopped filling early (safety limit or total byte cap reached). */
  stoppedEarly: string | undefined
  /** Why streams were refused at opening (error text, first 80 characters), with counts. */
  refusedReasons: Record<string, number>
  /** Identities (main first) with the number of their streams the node reset or refused. */
  identities: Array<{ peerId: string, opened: number, refused: number, resetByNode: number, disconnected: boolean }>
  openMs: number
  elapsedMs: number
}

interface Attacker { peerId: string, hosts: Host[], disconnected: boolean, tally: StreamTally }
interface Held { stream: Stream, protocol: FloodProtocol, who: Attacker, target: number, sent: number, ours: boolean, reset: boolean }

const tally = (): StreamTally => ({ attempted: 0, opened: 0, refused: 0, resetByNode: 0, heldToEnd: 0 })

async function hostsFor (key: PrivateKey, n: number): Promise<Host[]> {
  return await Promise.all(Array.from({ length: n }, async () => await createHost({ privateKey: key, listen: [], connectionMonitor: false, dhtServer: false })))
}

/** Runs the pool: `fn` on every item, at most `width` at once. */
async function pool<T> (items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

export async function runFlood (o: FloodOptions): Promise<FloodReport> {
  const log = o.log ?? (() => {})
  const started = performance.now()
  const addr = multiaddr(o.target.addr)
  const report: FloodReport = {
    mode: o.mode, mainPeerId: '', mainConnections: 0, connectionsOpened: 0, byProtocol: Object.fromEntries(PROTOCOLS.map(p => [p, tally()])) as Record<FloodProtocol, StreamTally>,
    main: tally(), small: tally(), bytesSent: 0, stoppedEarly: undefined, refusedReasons: {}, identities: [], openMs: 0, elapsedMs: 0
  }
  // the big peer: per protocol an even share; enough connections to fit the per-connection caps
  const share = PROTOCOLS.map((p, i) => Math.floor(o.mainStreams / 3) + (i < o.mainStreams % 3 ? 1 : 0))
  const conns = Math.max(1, ...PROTOCOLS.map((p, i) => Math.ceil(share[i] / PER_CONNECTION[p])), Math.ceil(o.mainStreams / YAMUX_STREAMS))
  const mainKey = await generateKeyPair('Ed25519')
  const main: Attacker = { peerId: '', hosts: await hostsFor(mainKey, conns), disconnected: false, tally: report.main }
  main.peerId = main.hosts[0].peerId.toString()
  report.mainPeerId = main.peerId
  report.mainConnections = conns
  const small: Attacker[] = []
  for (let i = 0; i < o.identities; i++) {
    const id = await newIdentity()
    small.push({ peerId: id.peerId, hosts: [id.host], disconnected: false, tally: report.small })
  }
  // one connection per host first: concurrent first dials from one host race into duplicate connections
  const everyHost = [main, ...small].flatMap(a => a.hosts.map(h => ({ a, h })))
  await pool(everyHost, 16, async ({ a, h }) => {
    h.addEventListener('peer:disconnect', () => { a.disconnected = true })
    h.addEventListener('connection:open', () => { report.connectionsOpened++ })
    try { await h.dial(addr, { signal: AbortSignal.timeout(15_000) }) } catch {}
  })
  // every stream to open: (attacker, host, protocol)
  const plan: Array<{ who: Attacker, host: Host, protocol: FloodProtocol }> = []
  PROTOCOLS.forEach((p, i) => { for (let k = 0; k < share[i]; k++) plan.push({ who: main, host: main.hosts[k % conns], protocol: p }) })
  for (const a of small) for (let k = 0; k < o.streamsPerIdentity; k++) plan.push({ who: a, host: a.hosts[0], protocol: PROTOCOLS[k % 3] })
  // interleave so the big peer and the small ones open at the same time
  const order = plan.map((x, i) => ({ x, k: hash(`${i}`) })).sort((a, b) => a.k - b.k).map(e => e.x)

  const held: Held[] = []
  const perId = new Map<Attacker, { opened: number, refused: number, resetByNode: number }>()
  const idStat = (a: Attacker): { opened: number, refused: number, resetByNode: number } => {
    let s = perId.get(a)
    if (s === undefined) { s = { opened: 0, refused: 0, resetByNode: 0 }; perId.set(a, s) }
    return s
  }
  const maxTotal = o.maxTotalBytes ?? 3 * 2 ** 30
  const stopReason = (): string | undefined => {
    if (o.signal?.aborted === true) return 'aborted'
    if (report.bytesSent >= maxTotal) return `attacker byte cap (${Math.round(maxTotal / 2 ** 20)} MiB) reached`
    if (o.shouldStop?.() === true) return 'safety limit (target RSS)'
    return undefined
  }
  const send = async (h: Held, bytes: Uint8Array): Promise<boolean> => {
    if (h.reset || h.stream.status !== 'open' || h.stream.writeStatus !== 'writable') return false
    try {
      h.stream.send(bytes)
      if (h.stream.writableNeedsDrain) await h.stream.onDrain({ signal: AbortSignal.timeout(30_000) })
      h.sent += bytes.length
      report.bytesSent += bytes.length
      return true
    } catch {
      return false
    }
  }

  // 1. open every stream and declare the maximal frame (prefix + first byte)
  await pool(order, 64, async ({ who, host, protocol }) => {
    if (o.signal?.aborted === true) return
    report.byProtocol[protocol].attempted++
    who.tally.attempted++
    let stream: Stream
    try {
      stream = await host.dialProtocol(addr, protocol, { signal: AbortSignal.timeout(15_000) })
    } catch (err) {
      const why = (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 80)
      report.refusedReasons[why] = (report.refusedReasons[why] ?? 0) + 1
      report.byProtocol[protocol].refused++
      who.tally.refused++
      idStat(who).refused++
      return
    }
    report.byProtocol[protocol].opened++
    who.tally.opened++
    idStat(who).opened++
    const frame = FLOOD_PROTOCOLS[protocol]
    const prefix = encodeFramePrefix(frame)
    const h: Held = { stream, protocol, who, target: prefix.length + Math.min(frame - 1, o.maxStreamBytes ?? frame - 1), sent: 0, ours: false, reset: false }
    stream.addEventListener('close', () => {
      if (h.ours || h.reset) return
      h.reset = true
      report.byProtocol[protocol].resetByNode++
      who.tally.resetByNode++
      idStat(who).resetByNode++
    })
    held.push(h)
    await send(h, Uint8Array.from([...prefix, 0]))
  })
  report.openMs = performance.now() - started
  log(`flood: ${held.length} streams open of ${plan.length} after ${Math.round(report.openMs)} ms`)

  // streams are held for holdMs after the filling ends (from now when nothing is filled)
  let end = Date.now() + o.holdMs
  let filled = false
  const fill = o.mode === 'hold' ? held : o.mode === 'mixed' ? held.filter((_, i) => i % 2 === 0) : []
  const drip = o.mode === 'trickle' ? held : o.mode === 'mixed' ? held.filter((_, i) => i % 2 === 1) : []
  const chunk = new Uint8Array(64 * 1024)
  // 2a. fill streams to all but their last byte, 16 at a time, within the byte cap, then hold them
  const filling = pool(fill, 16, async h => {
    while (h.sent < h.target) {
      const why = stopReason()
      if (why !== undefined) { report.stoppedEarly ??= why; return }
      const n = Math.min(chunk.length, h.target - h.sent)
      if (!await send(h, n === chunk.length ? chunk : chunk.subarray(0, n))) return
    }
  }).then(() => { filled = true; end = Date.now() + o.holdMs; if (fill.length > 0) log(`flood: filled, ${Math.round(report.bytesSent / 2 ** 20)} MiB sent${report.stoppedEarly !== undefined ? ` (stopped: ${report.stoppedEarly})` : ''}`) })
  // 2b. slowloris: a few bytes per stream per second, never the whole frame
  const per = Math.max(1, o.trickleBytesPerSec ?? 4)
  const drop = new Uint8Array(per)
  while ((!filled || Date.now() < end) && o.signal?.aborted !== true) {
    for (const h of drip) {
      if (h.reset || h.stream.writableNeedsDrain || h.sent + per >= h.target) continue
      void send(h, drop)
    }
    await new Promise(resolve => setTimeout(resolve, drip.length > 0 ? 1000 : 100))
  }
  await filling

  // 3. count what the node still lets us hold, then leave
  for (const h of held) {
    if (!h.reset && h.stream.status === 'open') { report.byProtocol[h.protocol].heldToEnd++; h.who.tally.heldToEnd++ }
    h.ours = true
    try { h.stream.abort(new Error('flood over')) } catch {}
  }
  for (const a of [main, ...small]) {
    const s = idStat(a)
    report.identities.push({ peerId: a.peerId, ...s, disconnected: a.disconnected })
  }
  await Promise.all([main, ...small].flatMap(a => a.hosts).map(async h => { await Promise.resolve(h.stop()).catch(() => {}) }))
  report.elapsedMs = performance.now() - started
  return report
}

function hash (s: string): number {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

// ---- the scenario: target + honest providers, idle baseline, then the flood with honest jobs ----

export interface FloodScenarioOptions {
  attack: Omit<FloodOptions, 'target' | 'shouldStop' | 'signal' | 'log'>
  /** Tasks per honest job (jobs run back to back on the target during the attack). */
  honestTasks: number
  /** The attacker stops filling once the target's RSS is this far above idle: protects the machine, not the node. */
  safetyMiB?: number
  /** How long the idle node is sampled for the baseline (ms). */
  idleMs?: number
  /** Another LocalNetwork class (an older checkout's demo/network.ts) to measure an older daemon. */
  Network?: new () => LocalNetwork
  log?: (s: string) => void
}

export interface FloodScenarioResult {
  flood: FloodReport
  /** The same node with no attack, in the same run. */
  idle: { rssMiB: number, statusMaxMs: number, statusP50Ms: number, honestJobMs: number, honestTasks: number }
  attack: { peakRssMiB: number, rssAboveIdleMiB: number, statusMaxMs: number, statusP50Ms: number, statusFailures: number, statusSamples: number, honestJobs: number, tasksChecked: number, honestJobMaxMs: number, honestJobMedianMs: number, honestJobFailure?: string }
  /** A few seconds after the attackers left. */
  after: { rssMiB: number, statusMs: number, alive: boolean, exit?: string }
  /** Hostile identities the node penalised (score below zero) or banned, and those it hung up on. */
  charged: { mainPenalized: boolean, mainBanned: boolean, mainScore: number, smallPenalized: number, smallBanned: number, smallDisconnected: number, smallTotal: number }
  /** The raw samples (status latency in ms, RSS in MiB, one every ~200 ms). */
  samples: { idleStatusMs: number[], attackStatusMs: number[], attackRssMiB: number[] }
}

function logFileTail (dataDir: string): string {
  try { return readFileSync(join(dataDir, 'logs', 'node.log'), 'utf8').slice(-4000) } catch { return '(none)' }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor(s.length / 2)] }

export async function runFloodScenario (s: FloodScenarioOptions): Promise<FloodScenarioResult> {
  const log = s.log ?? (() => {})
  const sn = await startSecurityNet({ Network: s.Network, log })
  const { target } = sn
  const pid = target.process.pid as number
  try {
    // warm-up (module cache, JIT), then the idle baseline: RSS, status latency, one honest job
    await runHonestJob(target, { tasks: s.honestTasks, salt: 100 })
    const idleVitals = sampleVitals(target)
    await new Promise(resolve => setTimeout(resolve, s.idleMs ?? 3000))
    const idleJob = await runHonestJob(target, { tasks: s.honestTasks, salt: 200 })
    const iv = await idleVitals.stop()
    const idleRss = median(iv.rssMiB)
    log(`idle: RSS ${idleRss.toFixed(0)} MiB, status max ${iv.maxStatusMs.toFixed(1)} ms, honest job ${idleJob.ms.toFixed(0)} ms`)

    let lastRss = idleRss
    const rssTimer = setInterval(() => { rssMiB(pid).then(r => { lastRss = r }, () => {}) }, 250)
    rssTimer.unref()
    const watch = watchPenalties(target)
    const vitals = sampleVitals(target)
    let run: HonestRun<FloodReport>
    try {
      run = await withHonestJobs(target, { tasks: s.honestTasks, salt: 10_000, rethrow: false }, async signal => await runFlood({
        ...s.attack,
        target: { peerId: target.peerId, addr: sn.addr },
        shouldStop: () => lastRss - idleRss > (s.safetyMiB ?? 3072),
        signal,
        log
      }))
    } finally {
      clearInterval(rssTimer)
    }
    const flood = run.value
    const dead = (): boolean => target.process.exitCode !== null || target.process.signalCode !== null
    // a wrong honest result is a failure whatever else happened; a job lost with its node is reported
    if (run.failure !== undefined) {
      // a node that just died may not have been reaped yet: give its exit a moment to show
      for (let i = 0; i < 50 && !dead(); i++) await new Promise(resolve => setTimeout(resolve, 100))
      if (!dead()) throw run.failure
    }
    const av = await vitals.stop()
    // the node charges some offences when a stream ends: look again once the attackers are gone
    await new Promise(resolve => setTimeout(resolve, 3000))
    await watch.poll().catch(() => {})
    watch.stop()
    const alive = !dead()
    if (!alive) log(`the target died under attack: exit code ${String(target.process.exitCode)}, signal ${String(target.process.signalCode)}; its output:\n${sn.net.logOf(target).slice(-2000)}\nits log file:\n${logFileTail(target.dataDir)}`)
    const statusMs = alive ? await statusLatency(target) : NaN
    const after = { rssMiB: alive ? await rssMiB(pid) : NaN, statusMs, alive, exit: alive ? undefined : `code ${String(target.process.exitCode)}, signal ${String(target.process.signalCode)}` }
    const seen = watch.seen
    const small = flood.identities.slice(1)
    const charged = {
      mainPenalized: seen.peers.has(flood.mainPeerId),
      mainBanned: seen.banned.has(flood.mainPeerId),
      mainScore: seen.peers.get(flood.mainPeerId) ?? 0,
      smallPenalized: small.filter(i => seen.peers.has(i.peerId)).length,
      smallBanned: small.filter(i => seen.banned.has(i.peerId)).length,
      smallDisconnected: small.filter(i => i.disconnected).length,
      smallTotal: small.length
    }
    const peak = Math.max(av.peakRssMiB, lastRss)
    return {
      flood,
      idle: { rssMiB: idleRss, statusMaxMs: iv.maxStatusMs, statusP50Ms: median(iv.statusMs), honestJobMs: idleJob.ms, honestTasks: s.honestTasks },
      attack: { peakRssMiB: peak, rssAboveIdleMiB: peak - idleRss, statusMaxMs: av.maxStatusMs, statusP50Ms: median(av.statusMs), statusFailures: av.statusFailures, statusSamples: av.statusMs.length, honestJobs: run.jobs, tasksChecked: run.tasksChecked, honestJobMaxMs: Math.max(0, ...run.jobMs), honestJobMedianMs: median(run.jobMs), honestJobFailure: run.failure?.message },
      after,
      charged,
      samples: { idleStatusMs: iv.statusMs, attackStatusMs: av.statusMs, attackRssMiB: av.rssMiB }
    }
  } catch (err) {
    for (const n of sn.net.nodes) log(`--- ${n.spec.name} log tail ---\n${sn.net.logOf(n).slice(-3000)}`)
    throw err
  } finally {
    await sn.stop()
  }
}
