// bench load: the highest rate of sealed task messages one daemon process sustains. Four sender
// peers push direct (k = 1) sealed envelopes at a fixed rate (open loop) for a few seconds per
// step; the rate steps up until a message is lost, the generator can not keep the schedule, or
// p99 exceeds 10x the p99 of the lowest step (and 250 ms). Baseline: raw echo round trips (our
// framing, no sealing, no acks machinery) at the same rates over the same kind of connections.
// See test/load/load-gen.ts for why envelopes are the hot path measured.
import { LocalNetwork } from '../demo/network.js'
import { runLoad, type LoadReport } from '../test/load/load-gen.js'
import { rssKiB } from '../test/fuzz/live-fuzzer.js'
import { metric, type BenchModule } from './lib.js'

function sustained (r: LoadReport, firstP99: number): boolean {
  return r.failed === 0 && r.outstanding === 0 && r.delivered === r.sent && r.achievedRate >= r.rate * 0.9 && r.p99Ms <= Math.max(250, 10 * firstP99)
}

export const run: BenchModule['run'] = async ({ quick }) => {
  const net = new LocalNetwork()
  const notes: string[] = []
  try {
    const node = await net.start({ name: 'target', location: '35.68,139.69', extra: ['--no-connection-monitor'] })
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
    const metrics = {
      maxSustainedRate: metric(best?.rate ?? 0, 'msg/s', undefined, '>= 1000 msg/s', (best?.rate ?? 0) >= 1000),
      p99AtMaxRate: metric(best?.envelope.p99Ms ?? NaN, 'ms', best?.echo.p99Ms, 'p99 of sealed+acked messages vs raw echo at the same rate'),
      p50AtMaxRate: metric(best?.envelope.p50Ms ?? NaN, 'ms', best?.echo.p50Ms),
      lostAtMaxRate: metric(best === undefined ? NaN : best.envelope.sent - best.envelope.delivered, 'messages', undefined, '0', best !== undefined && best.envelope.sent === best.envelope.delivered)
    }
    return {
      metrics,
      series: { steps: steps.map(s => ({ rate: s.rate, envelopeP50: s.envelope.p50Ms, envelopeP99: s.envelope.p99Ms, echoP50: s.echo.p50Ms, echoP99: s.echo.p99Ms, lost: s.envelope.sent - s.envelope.delivered, generatorRate: s.envelope.achievedRate })) },
      notes
    }
  } finally {
    await net.stop()
  }
}
