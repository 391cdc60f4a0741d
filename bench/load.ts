// bench load: the highest rate of sealed task messages one daemon process sustains. Four sender
// peers push direct (k = 1) sealed envelopes at a fixed rate (open loop) for a few seconds per
// step; the rate steps up until a message is lost, the generator can not keep the schedule, or
// p99 exceeds 10x the p99 of the lowest step (and 250 ms). Baseline: raw echo round trips (our
// framing, no sealing, no acks machinery) at the same rates over the same kind of connections.
// See test/load/load-gen.ts for why envelopes are the hot path measured.
//
// Then the flood rows (issue 12): one hostile peer with 2,000 streams across the task, relay and
// all-reduce protocols plus 100 identities with 20 each, every stream declaring the protocol's
// largest frame, either filled to all but its last byte and held ('hold') or trickled a few
// bytes a second ('trickle'); honest grid jobs run on the node meanwhile (test/load/flood-attack.ts).
// Baseline: the same node idle (RSS, status latency) and an honest job with no attack, same run.
// With BENCH_PREV_TREE=<checkout of an older commit> (node_modules linked) the same attack also
// runs against that daemon, as prev* rows: the before/after of a change.
import { LocalNetwork } from '../demo/network.js'
import { runLoad, type LoadReport } from '../test/load/load-gen.js'
import { rssKiB } from '../test/fuzz/live-fuzzer.js'
import { metric, type BenchModule, type Metric } from './lib.js'
import { runFloodScenario, type FloodScenarioResult } from '../test/load/flood-attack.js'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

function sustained (r: LoadReport, firstP99: number): boolean {
  return r.failed === 0 && r.outstanding === 0 && r.delivered === r.sent && r.achievedRate >= r.rate * 0.9 && r.p99Ms <= Math.max(250, 10 * firstP99)
}

const RSS_GOAL_MIB = 256
const STATUS_GOAL_MS = 1000

/** Rows for one flood run, prefixed (floodHold, floodTrickle, prevFloodHold, ...). */
function floodRows (prefix: string, r: FloodScenarioResult): Record<string, Metric> {
  const activeSmall = r.flood.identities.slice(1).filter(i => i.opened > 0).length
  const active = activeSmall + (r.flood.main.opened > 0 ? 1 : 0)
  const charged = r.charged.smallPenalized + (r.charged.mainPenalized ? 1 : 0)
  return {
    [`${prefix}PeakRss`]: metric(r.attack.peakRssMiB, 'MiB', r.idle.rssMiB, `<= idle + ${RSS_GOAL_MIB} MiB`, r.attack.rssAboveIdleMiB <= RSS_GOAL_MIB),
    [`${prefix}StatusMax`]: metric(r.attack.statusMaxMs, 'ms', r.idle.statusMaxMs, `< ${STATUS_GOAL_MS} ms, sampled every 200 ms`, r.attack.statusMaxMs < STATUS_GOAL_MS && r.attack.statusFailures === 0),
    [`${prefix}HonestJob`]: metric(r.attack.honestJobMedianMs, 'ms', r.idle.honestJobMs, `${r.attack.tasksChecked} results, every one correct`, r.attack.tasksChecked > 0),
    [`${prefix}Charged`]: metric(active === 0 ? 1 : charged / active, 'share', undefined, 'every identity with an open stream charged', charged >= active),
    [`${prefix}StreamsHeld`]: metric(r.flood.main.heldToEnd + r.flood.small.heldToEnd, 'streams', r.flood.main.attempted + r.flood.small.attempted)
  }
}

function floodNote (label: string, r: FloodScenarioResult): string {
  const f = r.flood
  const by = Object.entries(f.byProtocol).map(([p, t]) => `${p.split('/')[2]} ${t.opened}/${t.attempted} opened, ${t.resetByNode} reset, ${t.heldToEnd} held`).join('; ')
  const refused = Object.entries(f.refusedReasons).map(([k, n]) => `${n}x ${k}`).join('; ')
  return `${label}: ${(f.bytesSent / 2 ** 20).toFixed(0)} MiB sent${f.stoppedEarly !== undefined ? ` (attacker stopped: ${f.stoppedEarly})` : ''}; ${by}${refused !== '' ? `; refused: ${refused}` : ''}; ` +
    `RSS idle ${r.idle.rssMiB.toFixed(0)} -> peak ${r.attack.peakRssMiB.toFixed(0)} -> after ${r.after.rssMiB.toFixed(0)} MiB; status p50 ${r.attack.statusP50Ms.toFixed(0)} ms, max ${r.attack.statusMaxMs.toFixed(0)} ms (${r.attack.statusFailures} of ${r.attack.statusSamples} failed); ` +
    `${r.attack.honestJobs} honest jobs (${r.attack.tasksChecked} results checked); main peer score ${r.charged.mainScore.toFixed(0)}${r.charged.mainBanned ? ' (banned)' : ''}, small identities penalised ${r.charged.smallPenalized}/${r.charged.smallTotal}, banned ${r.charged.smallBanned}, disconnected ${r.charged.smallDisconnected}`
}

async function floods (quick: boolean, metrics: Record<string, Metric>, series: Record<string, unknown>, notes: string[]): Promise<void> {
  const scale = quick ? { mainStreams: 400, identities: 20 } : { mainStreams: 2000, identities: 100 }
  const runs: Array<{ prefix: string, label: string, Network?: new () => LocalNetwork }> = [{ prefix: 'flood', label: 'this daemon' }]
  const prev = process.env.BENCH_PREV_TREE
  if (prev !== undefined && prev !== '') {
    const mod = await import(pathToFileURL(join(prev, 'demo/network.ts')).href) as { LocalNetwork: new () => LocalNetwork }
    runs.push({ prefix: 'prevFlood', label: `daemon at ${prev}`, Network: mod.LocalNetwork })
  }
  for (const { prefix, label, Network } of runs) {
    for (const mode of ['hold', 'trickle'] as const) {
      const r = await runFloodScenario({
        attack: { mode, ...scale, streamsPerIdentity: 20, holdMs: mode === 'hold' ? 15_000 : (quick ? 20_000 : 30_000), maxTotalBytes: quick ? 2 ** 30 : 2 * 2 ** 30, trickleBytesPerSec: 4 },
        honestTasks: 20,
        safetyMiB: 2048,
        Network
      })
      const p = `${prefix}${mode === 'hold' ? 'Hold' : 'Trickle'}`
      Object.assign(metrics, floodRows(p, r))
      series[`${p}StatusMs`] = { idle: r.samples.idleStatusMs, underAttack: r.samples.attackStatusMs }
      series[`${p}RssMiB`] = r.samples.attackRssMiB.map((rss, i) => ({ sample: i, rss }))
      notes.push(floodNote(`${p} (${label}, ${scale.mainStreams} + ${scale.identities}x20 streams)`, r))
    }
  }
}

export const run: BenchModule['run'] = async ({ quick }) => {
  // BENCH_LOAD_RATES=0 / BENCH_LOAD_FLOOD=0 run only the flood rows / only the rate rows
  if (process.env.BENCH_LOAD_RATES === '0') {
    const metrics: Record<string, Metric> = {}; const series: Record<string, unknown> = {}; const notes: string[] = []
    await floods(quick, metrics, series, notes)
    return { metrics, series, notes }
  }
  const net = new LocalNetwork()
  const notes: string[] = []
  try {
    // the generator mints fresh sender identities at every step, all from 127.0.0.1: lift the
    // node's new-identity gate here (the flood rows measure it; this part measures message rate)
    const gate = process.env.DBC_GUARD_NEW_IDENTITY_BURST
    process.env.DBC_GUARD_NEW_IDENTITY_BURST = '1000000'
    const node = await net.start({ name: 'target', location: '35.68,139.69', extra: ['--no-connection-monitor'] })
      .finally(() => { if (gate === undefined) delete process.env.DBC_GUARD_NEW_IDENTITY_BURST; else process.env.DBC_GUARD_NEW_IDENTITY_BURST = gate })
    const target = { peerId: node.peerId, addr: node.addrs[0] }
    const seconds = quick ? 3 : 8
    const rates = quick ? [250, 500, 1000, 2000] : [250, 500, 1000, 1500, 2000, 3000, 4000, 6000]
    await runLoad({ target, rate: 100, seconds: 2, senders: 4 }) // warm-up
    const rssStart = await rssKiB(node.process.pid as number)
    const steps: Array<{ rate: number, envelope: LoadReport, echo: LoadReport }> = []
    let best: { rate: number, envelope: LoadReport, echo: LoadReport } | undefined
    for (const rate of rates) {
      const envelope = await runLoad({ target, rate, seconds, senders: 4, drainMs: 10_000 })
      const echo = await runLoad({ target, rate, seconds, senders: 4, drainMs: 10_000, kind: 'echo' })
      const step = { rate, envelope, echo }
      steps.push(step)
      const ok = sustained(envelope, steps[0].envelope.p99Ms)
      notes.push(`${rate}/s: envelopes sent ${envelope.sent}, acked ${envelope.delivered}, p50 ${envelope.p50Ms.toFixed(1)} ms, p99 ${envelope.p99Ms.toFixed(1)} ms, generator ${envelope.achievedRate.toFixed(0)}/s; echo p99 ${echo.p99Ms.toFixed(1)} ms${ok ? '' : ' -> not sustained'}`)
      if (!ok) break
      best = step
    }
    const rssEnd = await rssKiB(node.process.pid as number)
    notes.push(`node RSS ${Math.round(rssStart / 1024)} MiB -> ${Math.round(rssEnd / 1024)} MiB over the run`)
    notes.push('open-loop generator and node share this machine: the figure is a lower bound of the node alone')
    const metrics: Record<string, Metric> = {
      maxSustainedRate: metric(best?.rate ?? 0, 'msg/s', undefined, '>= 1000 msg/s', (best?.rate ?? 0) >= 1000),
      p99AtMaxRate: metric(best?.envelope.p99Ms ?? NaN, 'ms', best?.echo.p99Ms, 'p99 of sealed+acked messages vs raw echo at the same rate'),
      p50AtMaxRate: metric(best?.envelope.p50Ms ?? NaN, 'ms', best?.echo.p50Ms),
      lostAtMaxRate: metric(best === undefined ? NaN : best.envelope.sent - best.envelope.delivered, 'messages', undefined, '0', best !== undefined && best.envelope.sent === best.envelope.delivered)
    }
    await net.stop()
    const series: Record<string, unknown> = { steps: steps.map(s => ({ rate: s.rate, envelopeP50: s.envelope.p50Ms, envelopeP99: s.envelope.p99Ms, echoP50: s.echo.p50Ms, echoP99: s.echo.p99Ms, lost: s.envelope.sent - s.envelope.delivered, generatorRate: s.envelope.achievedRate })) }
    if (process.env.BENCH_LOAD_FLOOD !== '0') await floods(quick, metrics, series, notes)
    return { metrics, series, notes }
  } finally {
    await net.stop()
  }
}
