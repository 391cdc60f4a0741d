// bench training:
//  1. all-reduce round time for 4 and 8 peers on real libp2p streams (TCP on 127.0.0.1, one
//     process), before (one frame per slice) and after (slices in pipelined parts), against the
//     same bytes sent all-to-all on plain libp2p streams (no framing, no protobuf) over the same
//     connections in the same run;
//  2. unequal bandwidth: one of 4 members throttled in user space (its transport's send cap);
//     equal slices against slices cut by the bandwidths each member measured (BandwidthEstimate);
//  3. bytes each peer sends per round, per codec, for the MNIST MLP (50,890 parameters, 4 peers);
//  4. time to 90% test accuracy for 1 peer (in-process) and 4 peer processes.
import { performance } from 'node:perf_hooks'
import type { Host } from '../src/net/host.js'
import { AllReducePeer } from '../src/core/training/allreduce.js'
import { BandwidthEstimate, modelledRoundSeconds } from '../src/core/training/partition.js'
import type { CodecSpec } from '../src/core/training/codecs.js'
import { createRng } from '../src/core/rng.js'
import { TrainingTransport } from '../src/training/transport.js'
import { runTrainingJob } from '../src/training/session.js'
import { parseTrainingSpec, type TrainingSpecInput } from '../src/training/spec.js'
import { createMlpTrainer } from '../src/training/trainer.js'
import { spawnPeers, stopPeers, coordinatorHost } from '../test/integration/training-peers.js'
import { makeHosts, AllReduceGroup } from '../test/integration/allreduce-hosts.js'
import { metric, summarize, type BenchModule, type Metric } from './lib.js'

const RAW_SINK = '/bench/training-raw-sink/1.0.0'
const CHUNK = 64 * 1024

/**
 * The honest baseline: every host sends `bytes[i][j]` to every other host j at once, on plain
 * libp2p streams (64 KiB writes, no framing) over the connections the all-reduce uses; ms until
 * every byte arrived. Median of `runs`.
 */
async function rawAllToAllMs (hosts: Host[], bytes: (i: number, j: number) => number, runs: number): Promise<number> {
  const n = hosts.length
  let left = 0
  let done: (() => void) | undefined
  for (const h of hosts) {
    await h.handle(RAW_SINK, (stream) => {
      stream.addEventListener('message', (evt) => { left -= evt.data.byteLength; if (left <= 0) done?.() })
    })
  }
  const chunk = new Uint8Array(CHUNK).fill(1)
  const times: number[] = []
  for (let r = 0; r < runs + 1; r++) {
    const streams = await Promise.all(hosts.flatMap((h, i) => hosts.map(async (o, j) => i === j ? undefined : await h.dialProtocol(o.peerId, RAW_SINK))))
    left = 0
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) left += bytes(i, j)
    const finished = new Promise<void>(resolve => { done = resolve })
    const t0 = performance.now()
    await Promise.all(streams.map(async (s, k) => {
      if (s === undefined) return
      const total = bytes(Math.floor(k / n), k % n)
      for (let sent = 0; sent < total; sent += CHUNK) {
        const part = total - sent >= CHUNK ? chunk : chunk.subarray(0, total - sent)
        if (!s.send(part)) await s.onDrain()
      }
    }))
    await finished
    if (r > 0) times.push(performance.now() - t0) // the first run opens the streams' paths
    await Promise.all(streams.map(async s => { await s?.close() }))
  }
  for (const h of hosts) await h.unhandle(RAW_SINK)
  return summarize(times).p50
}

/** Median round time (ms) of `rounds` all-reduce rounds after one warm-up; also each member's measured send bandwidth. */
async function allReduceRoundMs (hosts: Host[], opts: { length: number, rounds: number, codec: CodecSpec, partValues?: number, sendCaps?: Array<number | undefined>, bandwidths?: number[] }): Promise<{ ms: number, bytesPerPeer: number, sliceSizes: number[], measured: number[] }> {
  const group = new AllReduceGroup(hosts, { length: opts.length, codec: opts.codec, partValues: opts.partValues, sendCaps: opts.sendCaps })
  await group.start()
  const rng = createRng(1)
  const vectors = hosts.map(() => Float32Array.from({ length: opts.length }, () => rng.next()))
  const estimates = hosts.map(() => new BandwidthEstimate())
  const times: number[] = []
  let bytes = 0
  let sliceSizes: number[] = []
  try {
    for (let round = 0; round < opts.rounds + 1; round++) {
      const before = group.transports.map(t => ({ ...t.stats }))
      const t0 = performance.now()
      const results = await group.round(round, vectors, { bandwidths: opts.bandwidths })
      const ms = performance.now() - t0
      group.transports.forEach((t, i) => { estimates[i].observe(t.stats.bytesSent - before[i].bytesSent, t.stats.sendBusyMs - before[i].sendBusyMs) })
      if (round > 0) { times.push(ms); bytes = results[0].bytesSent; sliceSizes = results[0].sliceSizes } // round 0 warms up the streams
    }
  } finally {
    await group.stop()
  }
  return { ms: summarize(times).p50, bytesPerPeer: bytes, sliceSizes, measured: estimates.map(e => e.value ?? 0) }
}

/** Bytes member i sends member j in a round with these slice sizes (fp32): its copy of j's slice, and the average of its own. */
function pairBytes (sizes: number[]): (i: number, j: number) => number {
  return (i, j) => 4 * (sizes[j] + sizes[i])
}

/** Bytes one peer sends per round with each codec (in-memory delivery: counts are exact). */
function bytesPerRound (codec: CodecSpec, length: number, peers: number): number {
  const members = Array.from({ length: peers }, (_, i) => `p${i}`)
  const machines = members.map(self => new AllReducePeer({ self, codec, length }))
  const rng = createRng(2)
  let sent = 0
  machines.forEach(m => { m.start(0, 0, members, Float32Array.from({ length }, () => (rng.next() - 0.5) * 0.01), { deadlineMs: 1000 }) })
  for (let pass = 0; pass < 3; pass++) {
    machines.forEach((m, i) => {
      for (const o of m.pollOutbound()) { if (i === 0) sent += o.chunk.data.length; machines[members.indexOf(o.to)].handleChunk(0, members[i], o.chunk) }
    })
  }
  return sent
}

export const run: BenchModule['run'] = async ({ quick }) => {
  const metrics: Record<string, Metric> = {}
  const notes: string[] = []
  const series: Record<string, unknown> = {}

  // 1. all-reduce throughput: before (a frame per slice) and after (pipelined parts) vs the same bytes all-to-all on plain streams
  const length = quick ? 250_000 : 1_000_000
  const rounds = quick ? 3 : 5
  const hosts = await makeHosts(8)
  const fp32: CodecSpec = { kind: 'fp32' }
  try {
    for (const n of [4, 8]) {
      const group = hosts.slice(0, n)
      const equal = Array.from({ length: n }, (_, i) => Math.floor(((i + 1) * length) / n) - Math.floor((i * length) / n))
      const rawMs = await rawAllToAllMs(group, pairBytes(equal), rounds)
      const whole = await allReduceRoundMs(group, { length, rounds, codec: fp32, partValues: length })
      const parts = await allReduceRoundMs(group, { length, rounds, codec: fp32 })
      const raw = length / (rawMs / 1000)
      metrics[`allreduce_${n}peers_raw_all_to_all_params_per_s`] = metric(raw, 'params/s')
      metrics[`allreduce_${n}peers_before_params_per_s`] = metric(length / (whole.ms / 1000), 'params/s', raw, 'one frame per slice vs the same bytes all-to-all on plain streams')
      metrics[`allreduce_${n}peers_after_params_per_s`] = metric(length / (parts.ms / 1000), 'params/s', raw, '>= 0.5x the same bytes all-to-all on plain streams', length / (parts.ms / 1000) >= 0.5 * raw)
      metrics[`allreduce_${n}peers_after_vs_before`] = metric(whole.ms / parts.ms, 'x faster')
      series[`allreduce_${n}peers`] = { length, rawAllToAllMs: rawMs, wholeSliceRoundMs: whole.ms, partsRoundMs: parts.ms, bytesSentPerPeer: parts.bytesPerPeer, measuredSendBytesPerSec: parts.measured }
    }
    notes.push(`all-reduce of ${length.toLocaleString()} fp32 parameters, median of ${rounds} rounds after a warm-up, as parameters averaged per second. before = one frame per slice; after = slices in parts of ${(128 * 1024).toLocaleString()} values (512 KiB) written back to back, a part averaged and returned as soon as every copy of it arrived. Baseline = the same bytes (each pair's scatter and gather) sent all-to-all at once on plain libp2p streams (64 KiB writes, no framing) over the same connections, in the same run. All peers share one process and this machine's cores.`)

    // 2. unequal bandwidth: member 0 throttled in user space
    const cap = quick ? 2e6 : 4e6
    const four = hosts.slice(0, 4)
    const caps = [cap, undefined, undefined, undefined]
    const equalRun = await allReduceRoundMs(four, { length, rounds, codec: fp32, sendCaps: caps })
    const awareRun = await allReduceRoundMs(four, { length, rounds, codec: fp32, sendCaps: caps, bandwidths: equalRun.measured })
    metrics.throttled_equal_slices_round_ms = metric(equalRun.ms, 'ms')
    metrics.throttled_bandwidth_aware_round_ms = metric(awareRun.ms, 'ms', equalRun.ms, '< equal slices (one member capped)', awareRun.ms < equalRun.ms)
    const bwValues = equalRun.measured.map(b => b / 4)
    series.throttled = {
      capBytesPerSec: cap,
      measuredSendBytesPerSec: equalRun.measured,
      equalSlices: equalRun.sliceSizes,
      awareSlices: awareRun.sliceSizes,
      equalRoundMs: equalRun.ms,
      awareRoundMs: awareRun.ms,
      modelledEqualMs: 1000 * modelledRoundSeconds(equalRun.sliceSizes, bwValues),
      modelledAwareMs: 1000 * modelledRoundSeconds(awareRun.sliceSizes, bwValues)
    }
    notes.push(`unequal bandwidth: 4 members, ${length.toLocaleString()} fp32 parameters; member 0's transport capped at ${(cap / 1e6).toFixed(0)} MB/s of sends (user space). Equal slices, then slices cut from the send bandwidths each member measured over the equal rounds (${equalRun.measured.map(b => (b / 1e6).toFixed(1)).join(', ')} MB/s): slices ${awareRun.sliceSizes.join(', ')}.`)
  } finally {
    await Promise.all(hosts.map(async h => { await h.stop() }))
  }

  // 3. bytes per round per codec (MLP 784-64-10, 4 peers)
  const P = 784 * 64 + 64 + 64 * 10 + 10
  const fp32Bytes = bytesPerRound({ kind: 'fp32' }, P, 4)
  const codecs: Array<[string, CodecSpec]> = [['fp16', { kind: 'fp16' }], ['int8', { kind: 'int8' }], ['topk5', { kind: 'topk', topkFraction: 0.05 }], ['topk1', { kind: 'topk', topkFraction: 0.01 }]]
  metrics.bytes_per_round_fp32 = metric(fp32Bytes, 'B/peer/round')
  for (const [name, codec] of codecs) {
    const b = bytesPerRound(codec, P, 4)
    const reduction = fp32Bytes / b
    metrics[`bytes_per_round_${name}`] = metric(b, 'B/peer/round', fp32Bytes, name.startsWith('topk') ? '>= 4x fewer than fp32' : undefined, name.startsWith('topk') ? reduction >= 4 : undefined)
  }
  notes.push('int8 carries a float32 scale per 256 values: 3.94x fewer bytes than fp32, just short of 4x; top-k sends (index, value) pairs for the largest 5% / 1% of the delta with error feedback.')

  // 4. time to 90% test accuracy
  const base: TrainingSpecInput = { rounds: quick ? 40 : 60, localSteps: 10, batchSize: 32, learningRate: 0.1, seed: 1, evalEvery: 2, deadline: { initialMs: 30_000 } }
  const target = 0.9
  const single = createMlpTrainer(parseTrainingSpec(base), 0, 1)
  let t0 = performance.now()
  let singleMs = NaN
  for (let step = 0; step < 4 * base.rounds! * base.localSteps!; step += 20) {
    await single.step(20)
    if (step % 100 === 80 && (await single.evaluate()).accuracy >= target) { singleMs = performance.now() - t0; break }
  }
  const peers = await spawnPeers(4)
  let groupMs = NaN
  let groupRound = -1
  try {
    const host = await coordinatorHost(peers)
    const transport = new TrainingTransport(host)
    await transport.start()
    t0 = performance.now()
    const result = await runTrainingJob({
      transport,
      spec: base,
      peers: peers.map(p => p.peerId),
      onProgress: (p) => { if (Number.isNaN(groupMs) && p.accuracy >= target) { groupMs = performance.now() - t0; groupRound = p.round } }
    })
    series.accuracy_4peers = result.history.filter(h => Number.isFinite(h.accuracy)).map(h => ({ round: h.round, accuracy: h.accuracy, roundMs: h.roundMs }))
    await transport.stop()
    await host.stop()
  } finally {
    await stopPeers(peers)
  }
  metrics.time_to_90pct_4peers_s = metric(groupMs / 1000, 's', singleMs / 1000)
  metrics.time_to_90pct_1peer_s = metric(singleMs / 1000, 's')
  notes.push(`time to ${target * 100}% test accuracy: 1 peer in-process (evaluated every 100 steps), 4 peer processes (evaluated every 2 rounds; reached at round ${groupRound}); both on this ${quick ? 'quick' : 'full'} run's machine, whose 2 cores the 4 peer processes share, so the group cannot be faster than one peer here.`)
  return { metrics, series, notes }
}
