// `npm run bench -- overlay`: the overlay's costs against baselines measured in the same run.
//  - sealed envelope round trip vs a plain libp2p stream echo (no project framing) on the same
//    connection: direct (goal <= 1.3x), k=2 (goal <= 2x direct), relayed one hop (goal <= 2x two
//    direct hops); the project's framed echo is reported beside it as its own row, and the relay
//    protocol's I/O alone (same frame sizes, no crypto: relay_io) as the floor under the direct row
//  - a task message's full round trip on each route of the route book (direct, relayed, overlay
//    where offered), beside a plain stream echo on the same connection (bench/task-routes.ts)
//  - seal + open CPU per envelope, node:crypto suite vs @noble
//  - capability query (CapabilityIndex, fresh and cached) vs one plain kad-dht findProviders
//  - memory: core state per simulated node, and heap per in-process libp2p node with the services
import { metric, summarize, liveHeapBytes, type BenchModule, type Metric } from './lib.js'
import { startNode, connect, type TestNode } from '../test/integration/overlay/nodes.js'
import { startDhtNodes, stopDhtNodes } from '../test/integration/overlay/dht-nodes.js'
import { EnvelopeService } from '../src/net/overlay/envelopes.js'
import { CapabilityIndex, toCid } from '../src/net/overlay/capability-index.js'
import { registerEcho, EchoClient } from '../src/net/echo.js'
import { sealEnvelope, openEnvelope, encodeEnvelope, nodeSuite, nobleSuite } from '../src/crypto/index.js'
import { capabilityKey } from '../src/core/capability/index.js'
import { CyclonView, Gossip } from '../src/core/membership/index.js'
import { ReceiveWindow, PeerScoreBook } from '../src/core/routing/index.js'
import { createVivaldiCoordinate } from '../src/core/geo/index.js'
import { createRng } from '../src/core/rng.js'
import type { Host } from '../src/net/host.js'
import { registerPlainEcho, PlainEchoClient, registerFramedAck, FramedAckClient } from './plain-echo.js'
import { relayRequestFrameOf, frameBody } from '../src/crypto/envelope-codec.js'
import { peerIdBytesOf } from '../src/net/peer-ids.js'
import { startTaskRoutes } from './task-routes.js'
import { installLibp2pPatches } from '../src/net/libp2p-patches.js'
import { loadavg, cpus } from 'node:os'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'

const PAYLOAD = 256

/** `after` runs untimed after each sample (e.g. waiting for a message's late copies to settle). */
async function timeIt (n: number, f: () => Promise<unknown>, after?: () => Promise<void>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < Math.min(20, n); i++) { await f(); await after?.() } // warm-up
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await f()
    out.push(performance.now() - t)
    await after?.()
  }
  return out
}

/**
 * Rows measured alternately, `rounds` times over (load from other processes then hits them
 * alike); each row's figure is the median of its per-round p50s, which one busy round can not
 * move. `samples` per row per round.
 */
interface Row {
  samples: number
  run: () => Promise<unknown>
  after?: () => Promise<void>
  /** Runs untimed before the row's warm-up and before each of its rounds (e.g. a fresh stream). */
  before?: () => Promise<void>
}

/** Untimed round trips per row before the timed rounds (see alternate), and how many of them are timed as the cold figure. */
const WARM_ROUND_TRIPS = 2000
const COLD_SAMPLES = 100

async function alternate (rows: Record<string, Row>, rounds: number, warm = 0): Promise<Record<string, { p50: number, rounds: number[], all: ReturnType<typeof summarize>, cold: number }>> {
  const acc: Record<string, { rounds: number[], all: number[] }> = {}
  // Warm-up, the same for every row: `warm` round trips per row before the timed rounds, the
  // first COLD_SAMPLES of them timed (the cold figure). A function V8 runs once per message is
  // optimized by TurboFan after ~3000 calls (--invocation-count-for-turbofan); the envelope path
  // is many such functions, the plain echo a few libp2p ones that every row runs, so without
  // this the envelope rows are timed mid-tier-up (measured: direct-only p50 per 500 round trips
  // 518 -> 155 us over the first 4000, the plain echo 296 -> 118 us over the first 1500).
  const cold: Record<string, number> = {}
  for (const [name, row] of Object.entries(rows)) {
    const t: number[] = []
    await row.before?.()
    for (let i = 0; i < warm; i++) {
      const s = performance.now()
      await row.run()
      if (i < COLD_SAMPLES) t.push(performance.now() - s)
      await row.after?.()
    }
    cold[name] = t.length > 0 ? summarize(t).p50 : NaN
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, row] of Object.entries(rows)) {
      await row.before?.()
      const t = await timeIt(row.samples, row.run, row.after)
      const a = acc[name] ??= { rounds: [], all: [] }
      a.rounds.push(summarize(t).p50)
      a.all.push(...t)
    }
  }
  const out: Record<string, { p50: number, rounds: number[], all: ReturnType<typeof summarize>, cold: number }> = {}
  for (const [name, a] of Object.entries(acc)) out[name] = { p50: median(a.rounds), rounds: a.rounds, all: summarize(a.all), cold: cold[name] }
  return out
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const load = (): string => loadavg().map(x => x.toFixed(1)).join(' / ')

async function envelopes (quick: boolean, metrics: Record<string, Metric>, series: Record<string, unknown>, notes: string[]): Promise<void> {
  const nodes: TestNode[] = []
  for (let i = 0; i < 3; i++) nodes.push(await startNode())
  const [a, b, r] = nodes
  await connect(a, b); await connect(a, r); await connect(r, b)
  const services = nodes.map(n => new EnvelopeService(n.node, { secretKey: n.secretKey, ackTimeoutMs: 1000 }))
  for (const s of services) await s.start()
  // a second pair of services in ephemeral (forward-secret) mode, on other nodes
  const ea = await startNode(); const eb = await startNode(); await connect(ea, eb)
  const eph = [ea, eb].map(n => new EnvelopeService(n.node, { secretKey: n.secretKey, ackTimeoutMs: 1000, mode: 'ephemeral', trustAead: false }))
  for (const s of eph) await s.start()
  // and a pair that signs every envelope, also the direct copies (signDirect: non-repudiation)
  const sa = await startNode(); const sb = await startNode(); await connect(sa, sb)
  const signing = [sa, sb].map(n => new EnvelopeService(n.node, { secretKey: n.secretKey, ackTimeoutMs: 1000, signDirect: true }))
  for (const s of signing) await s.start()
  // and the previous design, for the row beside the headline: every direct copy sealed with the
  // envelope's own AEAD as well as Noise (sealDirect; the daemon now sends it unsealed on /dbc/relay/1.1.0)
  const da = await startNode(); const db = await startNode(); await connect(da, db)
  const sealing = [da, db].map(n => new EnvelopeService(n.node, { secretKey: n.secretKey, ackTimeoutMs: 1000, sealDirect: true }))
  for (const s of sealing) await s.start()
  await registerEcho(b.node as unknown as Host)
  await registerPlainEcho(b.node)
  let echo = await EchoClient.open(a.node as unknown as Host, b.node.peerId)
  // the echo server drops a stream idle for 30 s (src/net/echo.ts), as long as the other rows'
  // warm-up can take under load: the row opens a fresh stream for its warm-up and each round
  const reopenEcho = async (): Promise<void> => { await echo.close().catch(() => {}); echo = await EchoClient.open(a.node as unknown as Host, b.node.peerId) }
  const plain = await PlainEchoClient.open(a.node, b.node.peerId)
  const payload = new Uint8Array(PAYLOAD).fill(7)
  // the relay protocol's I/O alone: a frame the size of a direct copy's RelayRequest, answered
  // by a frame the size of its ack (message id; path 0 and status OK are left out)
  const sample = sealEnvelope({ senderSecretKey: a.secretKey, sender: peerIdBytesOf(a.id), recipient: peerIdBytesOf(b.id), payload, expiresAt: Date.now() + 30_000, sequence: 1, random: out => out.fill(1), mode: 'static', sign: false })
  const copyBytes = frameBody(relayRequestFrameOf(sample, 2, 0)).length
  await registerFramedAck(b.node, 18)
  // (a fresh stream for the warm-up and each round too: a guarded stream with no frame for 10 s is reset)
  let relayIo = await FramedAckClient.open(a.node, b.node.peerId)
  const reopenRelayIo = async (): Promise<void> => { await relayIo.close(); relayIo = await FramedAckClient.open(a.node, b.node.peerId) }
  const settled = async (): Promise<void> => { while (services[0].copiesInFlight > 0) await new Promise(resolve => setImmediate(resolve)) }
  // k = 2 is honest only if the second copy is sent: count the messages whose both copies reached
  // the recipient (the row would be cheaper, not faster, if the relayed copy were dropped)
  const k2Copies = { messages: 0, both: 0, mark: 0 }
  const rounds = quick ? 6 : 10
  const per = Math.round((quick ? 300 : 2000) / rounds)
  const loadBefore = load()
  const res = await alternate({
    plainStream: { samples: per, run: async () => { await plain.roundTrip(payload) } },
    framedEcho: { samples: per, before: reopenEcho, run: async () => await echo.roundTrip(payload) },
    relayIo: { samples: per, before: reopenRelayIo, run: async () => { await relayIo.roundTrip(copyBytes) } },
    direct: { samples: per, run: async () => await services[0].send(b.id, payload, { k: 1 }) },
    directSealed: { samples: per, run: async () => await sealing[0].send(db.id, payload, { k: 1 }) },
    // k=2 as a round trip: the next message goes once the late copy's ack is back (in one process
    // back-to-back sends would also time the previous relayed copy's work: k2BackToBack)
    k2: {
      samples: per,
      run: async () => { k2Copies.mark = services[1].stats.duplicates; return await services[0].send(b.id, payload, { k: 2 }) },
      after: async () => { await settled(); k2Copies.messages++; if (services[1].stats.duplicates > k2Copies.mark) k2Copies.both++ }
    },
    k2BackToBack: { samples: per, run: async () => await services[0].send(b.id, payload, { k: 2 }) },
    relayed: { samples: per, run: async () => await services[0].send(b.id, payload, { k: 1, direct: false }) },
    directEphemeral: { samples: Math.ceil(per / 2), run: async () => await eph[0].send(eb.id, payload, { k: 1 }) },
    directSigned: { samples: Math.ceil(per / 2), run: async () => await signing[0].send(sb.id, payload, { k: 1 }) }
  }, rounds, WARM_ROUND_TRIPS)
  const raw = res.plainStream.p50; const direct = res.direct.p50
  metrics.framed_echo_rtt_p50 = metric(res.framedEcho.p50, 'ms', raw, 'the project framing (/dbc/echo) vs a plain libp2p stream')
  metrics.relay_io_rtt_p50 = metric(res.relayIo.p50, 'ms', raw, `the relay protocol's I/O alone (a ${copyBytes} B frame, a direct copy's size, answered by an 18 B ack frame; guarded, push mode; no crypto, no bookkeeping): the floor under the direct row`)
  metrics.envelope_rtt_direct_p50 = metric(direct, 'ms', raw, '<= 1.3x plain libp2p stream (what the daemon sends: the direct copy unsealed on /dbc/relay/1.1.0)', direct <= 1.3 * raw)
  metrics.envelope_rtt_direct_sealed_p50 = metric(res.directSealed.p50, 'ms', raw, 'the previous design (sealDirect: the direct copy sealed by the envelope AEAD inside Noise; another node pair in this process) vs the same plain stream')
  metrics.envelope_rtt_direct_p99 = metric(res.direct.all.p99, 'ms', res.plainStream.all.p99)
  metrics.envelope_rtt_direct_cold_p50 = metric(res.direct.cold, 'ms', raw, `the first ${COLD_SAMPLES} direct round trips of the run (the envelope code not yet optimized by V8; libp2p already warm from the rows before) vs the plain stream's p50 above`)
  metrics.envelope_rtt_relayed_p50 = metric(res.relayed.p50, 'ms', 2 * direct, 'one relay hop, forced (direct: false) vs two direct envelope round trips: <= 2x', res.relayed.p50 <= 2 * (2 * direct))
  metrics.envelope_rtt_direct_ephemeral_p50 = metric(res.directEphemeral.p50, 'ms', raw, 'forward-secret mode, signature verified')
  metrics.envelope_rtt_direct_signed_p50 = metric(res.directSigned.p50, 'ms', raw, 'static mode with signDirect (every copy signed)')
  metrics.envelope_rtt_k2_p50 = metric(res.k2.p50, 'ms', direct, '<= 2x direct (first ack; the next message after the late copy settled)', res.k2.p50 <= 2 * direct)
  metrics.envelope_rtt_k2_back_to_back_p50 = metric(res.k2BackToBack.p50, 'ms', direct, 'k=2 sent back to back: also pays the previous message\'s relayed copy (relay + recipient + ack, same CPU)')
  metrics.envelope_rtt_k2_p99 = metric(res.k2.all.p99, 'ms', res.direct.all.p99)
  series.envelope_rtt_ms = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { ...v.all, roundP50s: v.rounds }]))
  notes.push(`k = 2 row: both copies reached the recipient for ${k2Copies.both} of ${k2Copies.messages} messages (the relayed copy is signed off the event loop and goes even when the direct ack came first)`)
  notes.push(`envelope rows: ${WARM_ROUND_TRIPS} untimed round trips per row first (V8 optimizes the once-per-message functions after ~3000 calls; the first ${COLD_SAMPLES} are the cold row), then ${rounds} alternating rounds of ${per} round trips per row (half that for ephemeral/signed); each p50 is the median of the per-round p50s (p99s over all samples); load average (1/5/15 min) ${loadBefore} before, ${load()} after, on ${cpus().length} cores`)
  for (const s of eph) await s.stop()
  await ea.node.stop(); await eb.node.stop()
  for (const s of signing) await s.stop()
  await sa.node.stop(); await sb.node.stop()
  for (const s of sealing) await s.stop()
  await da.node.stop(); await db.node.stop()
  notes.push(`direct copies unsealed: ${services[0].stats.unsealedSent} of ${services[0].stats.sent} messages of the main sender went with an unsealed direct copy; the sealDirect sender sent ${sealing[0].stats.unsealedSent}`)
  await echo.close().catch(() => {})
  await plain.close()
  await relayIo.close()
  for (const s of services) await s.stop()
  for (const x of nodes) await x.node.stop()
}

interface Peer { id: string, addr: string, dial: (addr: string) => Promise<void>, stop: () => void }

/** A node in a child process (bench/overlay-peer.ts). */
async function spawnPeer (): Promise<Peer> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', fileURLToPath(new URL('./overlay-peer.ts', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting: Array<(e: Record<string, unknown>) => void> = []
  createInterface({ input: child.stdout }).on('line', line => {
    try { waiting.shift()?.(JSON.parse(line) as Record<string, unknown>) } catch {}
  })
  const next = async (): Promise<Record<string, unknown>> => await new Promise((resolve, reject) => {
    waiting.push(resolve)
    child.once('exit', code => { reject(new Error(`bench peer exited with ${code}`)) })
  })
  const ready = await next()
  return {
    id: ready.id as string,
    addr: ready.addr as string,
    dial: async (addr) => {
      const answer = next()
      child.stdin.write(JSON.stringify({ cmd: 'dial', addr }) + '\n')
      const e = await answer
      if (e.event !== 'dialed') throw new Error(`bench peer could not dial ${addr}: ${String(e.error)}`)
    },
    stop: () => { child.kill('SIGKILL') }
  }
}

/**
 * The same envelope rows with recipient and relay in processes of their own (the sender in this
 * one), as on separate machines: the relayed copy of a k=2 message is then not worked on by the
 * process that waits for the direct copy's ack (on this 2-core box they still share the CPUs).
 */
async function envelopesAcrossProcesses (quick: boolean, metrics: Record<string, Metric>, series: Record<string, unknown>, notes: string[]): Promise<void> {
  const [b, r] = await Promise.all([spawnPeer(), spawnPeer()])
  const a = await startNode()
  const svc = new EnvelopeService(a.node, { secretKey: a.secretKey, ackTimeoutMs: 1000 })
  // the previous design (direct copies sealed too) from a second sender node in this process, to the same recipient
  const a2 = await startNode()
  const sealing = new EnvelopeService(a2.node, { secretKey: a2.secretKey, ackTimeoutMs: 1000, sealDirect: true })
  try {
    await svc.start(); await sealing.start()
    await a.node.dial(multiaddr(b.addr)); await a.node.dial(multiaddr(r.addr)); await r.dial(b.addr); await a2.node.dial(multiaddr(b.addr))
    const plain = await PlainEchoClient.open(a.node, peerIdFromString(b.id))
    const payload = new Uint8Array(PAYLOAD).fill(7)
    const settled = async (): Promise<void> => { while (svc.copiesInFlight > 0) await new Promise(resolve => setImmediate(resolve)) }
    const rounds = quick ? 6 : 10
    const per = Math.round((quick ? 300 : 2000) / rounds)
    const loadBefore = load()
    const res = await alternate({
      plainStream: { samples: per, run: async () => { await plain.roundTrip(payload) } },
      direct: { samples: per, run: async () => await svc.send(b.id, payload, { k: 1 }) },
      directSealed: { samples: per, run: async () => await sealing.send(b.id, payload, { k: 1 }) },
      k2: { samples: per, run: async () => await svc.send(b.id, payload, { k: 2 }), after: settled },
      k2BackToBack: { samples: per, run: async () => await svc.send(b.id, payload, { k: 2 }) },
      relayed: { samples: per, run: async () => await svc.send(b.id, payload, { k: 1, direct: false }) }
    }, rounds, WARM_ROUND_TRIPS)
    const direct = res.direct.p50
    metrics.processes_envelope_rtt_direct_p50 = metric(direct, 'ms', res.plainStream.p50, 'recipient in another process: <= 1.3x plain libp2p stream (the direct copy unsealed, as the daemon sends it)', direct <= 1.3 * res.plainStream.p50)
    metrics.processes_envelope_rtt_direct_sealed_p50 = metric(res.directSealed.p50, 'ms', res.plainStream.p50, 'the previous design (sealDirect), from a second sender node in this process to the same recipient')
    metrics.processes_envelope_rtt_k2_p50 = metric(res.k2.p50, 'ms', direct, 'recipient and relay in other processes: <= 2x direct (first ack)', res.k2.p50 <= 2 * direct)
    metrics.processes_envelope_rtt_k2_back_to_back_p50 = metric(res.k2BackToBack.p50, 'ms', direct, 'the same, sent back to back')
    metrics.processes_envelope_rtt_relayed_p50 = metric(res.relayed.p50, 'ms', 2 * direct, 'one relay hop vs two direct round trips: <= 2x', res.relayed.p50 <= 2 * (2 * direct))
    series.processes_envelope_rtt_ms = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { ...v.all, roundP50s: v.rounds }]))
    notes.push(`processes_* rows: sender here, recipient and relay each in a child process (bench/overlay-peer.ts), TCP 127.0.0.1; ${WARM_ROUND_TRIPS} untimed round trips per row first, then ${rounds} alternating rounds of ${per}, median of per-round p50s; load ${loadBefore} before, ${load()} after`)
    await plain.close()
  } finally {
    await svc.stop(); await sealing.stop()
    await a.node.stop(); await a2.node.stop()
    b.stop(); r.stop()
  }
}

/** A task message's full round trip on each route the submitter's route book takes (bench/task-routes.ts). */
async function taskRoutes (quick: boolean, metrics: Record<string, Metric>, series: Record<string, unknown>, notes: string[]): Promise<void> {
  const t = await startTaskRoutes()
  try {
    const rounds = quick ? 4 : 8
    const per = quick ? 25 : 60
    const rows: Record<string, Row> = { plainStream: { samples: per, run: t.plainEcho } }
    for (const r of t.routes) rows[r.name] = { samples: per, run: r.roundTrip }
    const loadBefore = load()
    const res = await alternate(rows, rounds)
    const direct = res.direct.p50
    metrics.task_rtt_direct_p50 = metric(direct, 'ms', res.plainStream.p50, 'TaskMessage -> TaskResult on a direct connection (a /dbc/task stream per task) vs a plain stream echo on that connection')
    metrics.task_rtt_relayed_p50 = metric(res.relayed.p50, 'ms', direct, 'the same through a circuit-relay-v2 connection (provider behind "NAT", listening only via the relay) vs direct')
    metrics.task_rtt_overlay_p50 = metric(res.overlay.p50, 'ms', direct, 'the same as sealed envelopes through the relay (routing: overlay; task application, one chunk) vs direct')
    series.task_rtt_ms = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { ...v.all, roundP50s: v.rounds }]))
    notes.push(`task rows: real hosts (createHost) in one process, a ${256} B input echoed by the FakeProvider under a signed lease; the overlay route forced (forceOverlay) with k = 1 and direct: false, so its envelopes go through the one relay; routes as the route book recorded them: ${t.routes.map(r => `${r.name} = ${r.recorded()}`).join('; ')}; ${rounds} alternating rounds of ${per}; load ${loadBefore} before, ${load()} after`)
  } finally {
    await t.stop()
  }
}

function cryptoCost (quick: boolean, metrics: Record<string, Metric>): void {
  const rng = createRng(1)
  const keys = [1, 2].map(seed => {
    const sk = createRng(seed).bytes(new Uint8Array(32))
    return { sk, id: peerIdFromSeed(sk) }
  })
  const payload = new Uint8Array(PAYLOAD)
  const per = (suite: typeof nodeSuite, n: number, mode: 'ephemeral' | 'static' = 'ephemeral', direct = false): number => {
    const t = performance.now()
    for (let i = 0; i < n; i++) {
      const e = sealEnvelope({ senderSecretKey: keys[0].sk, sender: keys[0].id, recipient: keys[1].id, payload, expiresAt: 1e12 + 60_000, random: rng.bytes, suite, mode, sign: !direct })
      const r = openEnvelope(encodeEnvelope(e), { now: 1e12, recipient: keys[1].id, recipientSecretKey: keys[1].sk, suite, verifySignature: mode === 'ephemeral', deliveredBySender: direct })
      if (!r.ok) throw new Error('bench envelope did not open')
    }
    return (performance.now() - t) / n * 1000
  }
  per(nodeSuite, 50); per(nobleSuite, 10); per(nodeSuite, 50, 'static')
  const node = per(nodeSuite, quick ? 300 : 2000)
  const noble = per(nobleSuite, quick ? 50 : 300)
  const fast = per(nodeSuite, quick ? 300 : 2000, 'static')
  const direct = per(nodeSuite, quick ? 300 : 2000, 'static', true)
  metrics.seal_open_ephemeral_us = metric(node, 'us', noble, 'node:crypto suite vs @noble (ephemeral, signature verified)', node < noble)
  metrics.seal_open_static_us = metric(fast, 'us', node, 'static pair key, AEAD-authenticated vs ephemeral', fast < node)
  metrics.seal_open_static_direct_us = metric(direct, 'us', fast, 'unsigned static copy (what the overlay sends directly) vs signed static', direct < fast)
}

import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../src/core/identity/index.js'
function peerIdFromSeed (sk: Uint8Array): Uint8Array { return peerIdBytesFromEd25519Key(ed25519PublicKey(sk)) }

async function capability (quick: boolean, metrics: Record<string, Metric>, notes: string[]): Promise<void> {
  const N = quick ? 20 : 50
  const nodes = await startDhtNodes(N)
  const idx = nodes.map(n => new CapabilityIndex(n.host, { secretKey: n.secretKey, location: { lat: 48.85, lon: 2.35 } }))
  for (const i of idx) await i.start()
  await new Promise(resolve => setTimeout(resolve, 1000))
  // 6 providers of RTX4090 around Europe
  const places = [[52.52, 13.4], [50.85, 4.35], [40.42, -3.7], [48.2, 16.37], [45.46, 9.19], [48.86, 2.35]]
  for (let i = 0; i < places.length; i++) {
    await idx[1 + i * 3].publish({ gpus: [{ model: 'RTX4090', count: 1, memoryMib: 24576 }], cpuCores: 8, memoryMib: 32768, lat: places[i][0], lon: places[i][1], ttlMs: 600_000, capabilities: ['gpu:RTX4090'] })
  }
  // baseline: one findProviders on the same DHT for the key of the Paris r5 cell
  const key = toCid(capabilityKey('gpu:RTX4090', 'r5:22:32'))
  const base: number[] = []; const ours: number[] = []; const cached: number[] = []
  const rounds = quick ? 8 : 20
  for (let i = 0; i < rounds; i++) {
    const q = nodes[(i * 7 + 2) % N]
    let t = performance.now()
    for await (const p of q.host.contentRouting.findProviders(key)) void p
    base.push(performance.now() - t)
    const qi = idx[(i * 7 + 2) % N]
    t = performance.now()
    const rep = await qi.query({ capability: 'gpu:RTX4090', want: 3, latE4: 488500, lonE4: 23500 }, { fresh: true })
    ours.push(performance.now() - t)
    if (rep.results.length < 3) notes.push(`query ${i} found only ${rep.results.length} of 3`)
    t = performance.now()
    const again = await qi.query({ capability: 'gpu:RTX4090', want: 3, latE4: 488500, lonE4: 23500 })
    cached.push(performance.now() - t)
    if (!again.fromCache) notes.push(`query ${i} repeat missed the cache`)
  }
  const sb = summarize(base); const so = summarize(ours); const sc = summarize(cached)
  metrics.capability_query_p50 = metric(so.p50, 'ms', sb.p50, '<= findProviders p50', so.p50 <= sb.p50)
  metrics.capability_query_p90 = metric(so.p90, 'ms', sb.p90)
  metrics.capability_query_cached_p50 = metric(sc.p50, 'ms', sb.p50, '< 5 ms', sc.p50 < 5)
  notes.push(`capability query: ${N} in-process kad-dht nodes on 127.0.0.1, want 3 of 6 providers, fresh lookups; baseline is one full findProviders for one key on the same DHT`)
  for (const i of idx) await i.stop()
  await stopDhtNodes(nodes)
}

function coreMemory (metrics: Record<string, Metric>): void {
  const n = 10_000
  const before = liveHeapBytes()
  const keep: unknown[] = []
  for (let i = 0; i < n; i++) {
    const rng = createRng(i)
    const view = new CyclonView<number>({ self: i, rng, viewSize: 16 })
    view.addPeers(Array.from({ length: 16 }, (_, k) => (i + k + 1) % n))
    const gossip = new Gossip<number, null>({ self: i, rng, samplePeers: (m, ex) => view.sample(m, ex), seenCapacity: 256 })
    keep.push(view, gossip, createVivaldiCoordinate())
  }
  const per = (liveHeapBytes() - before) / n
  metrics.core_state_per_node = metric(per / 1024, 'KiB', undefined, 'view 16 + gossip (256-id seen set) + Vivaldi')
  // the per-node receive window and score book start empty and grow with traffic (bounded)
  void new ReceiveWindow(); void new PeerScoreBook()
  keep.length = 0
}

async function hostMemory (metrics: Record<string, Metric>): Promise<void> {
  const n = 10
  const before = liveHeapBytes()
  const nodes: TestNode[] = []
  for (let i = 0; i < n; i++) nodes.push(await startNode())
  const afterNodes = liveHeapBytes()
  const services = nodes.map(x => new EnvelopeService(x.node, { secretKey: x.secretKey }))
  for (const s of services) await s.start()
  const afterServices = liveHeapBytes()
  metrics.heap_per_libp2p_node = metric((afterNodes - before) / n / 2 ** 20, 'MiB', undefined, 'bare in-process node (baseline for the next row)')
  metrics.heap_overlay_services_per_node = metric((afterServices - afterNodes) / n / 1024, 'KiB', undefined, 'envelope service on top of a node')
  for (const s of services) await s.stop()
  for (const x of nodes) await x.node.stop()
}

export const run: BenchModule['run'] = async ({ quick }) => {
  const metrics: Record<string, Metric> = {}
  const series: Record<string, unknown> = {}
  const notes: string[] = []
  // DBC_BENCH_OVERLAY_PARTS=envelopes,tasks (say) runs only those parts (while tuning one path)
  const only = process.env.DBC_BENCH_OVERLAY_PARTS?.split(',')
  const part = (name: string): boolean => only === undefined || only.includes(name)
  // the daemon's libp2p stack: createHost's process-wide fixes (one socket write per message,
  // yamux window updates at half a window, no stack trace per Noise read), here and in the
  // bench peers, for the envelope rows and their plain-stream baseline alike
  installLibp2pPatches()
  if (part('crypto')) cryptoCost(quick, metrics)
  if (part('envelopes')) await envelopes(quick, metrics, series, notes)
  if (part('processes')) await envelopesAcrossProcesses(quick, metrics, series, notes)
  if (part('tasks')) await taskRoutes(quick, metrics, series, notes)
  if (part('memory')) { coreMemory(metrics); await hostMemory(metrics) }
  if (part('capability')) await capability(quick, metrics, notes)
  notes.push(`envelope round trip: ${PAYLOAD} B payload; the direct copy goes unsealed once the sender's stream to the recipient negotiated /dbc/relay/1.1.0 (the connection's Noise, end to end to the recipient, encrypts it and proves the sender; the recipient takes it only from its sender's own connection); the direct_sealed rows are the previous design, sealed (static pair key; the direct copy unsigned: the recipient checks the pair-key AEAD tag; a relayed copy signed once per message by the sender, in libuv's thread pool once the direct copy is written, and the relay takes the sender's own connection as proof instead of verifying: one Ed25519 signature per relayed message), recipient opens (AEAD-authenticated) and acks on the authenticated connection (through a relay the ack is MACed with the pair's ack key); baseline = the same bytes echoed on a plain libp2p stream (no framing, no protobuf, no guard) on the same connection; every node runs the daemon's libp2p fixes (src/net/libp2p-patches.ts: one socket write per message, lazy yamux window updates); the framed /dbc/echo row shows what the project framing alone costs; relayed = forced through the third node (direct: false); all three nodes in one process, TCP 127.0.0.1, so k=2 also pays, on the same CPU, the relay's and the recipient's work for the second copy (on separate machines that work runs in parallel)`)
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') notes.push('heap figures without --expose-gc are noisy')
  return { metrics, series, notes }
}
