// One daemon process receives `rate` sealed task messages per second for `seconds` from several
// peers (test/load/load-gen.ts). Asserts: no message lost (every send acked, none failed or left
// outstanding, and the node's own received counter grew by exactly the number sent), and the
// node's RSS peak stays within `rssBoundMiB` of its warmed-up size. Returns the figures.
import * as assert from 'uvu/assert'
import { LocalNetwork } from '../../demo/network.js'
import { runLoad, type LoadReport } from './load-gen.js'
import { rssKiB } from '../fuzz/live-fuzzer.js'

export interface LoadScenario { rate: number, seconds: number, senders: number, rssBoundMiB: number }
export interface LoadScenarioResult { report: LoadReport, nodeReceived: number, rssBeforeMiB: number, rssPeakMiB: number, rssAfterMiB: number }

export async function runLoadScenario (s: LoadScenario): Promise<LoadScenarioResult> {
  const net = new LocalNetwork()
  try {
    const node = await net.start({ name: 'target', location: '35.68,139.69', extra: ['--no-connection-monitor'] })
    const pid = node.process.pid as number
    const target = { peerId: node.peerId, addr: node.addrs[0] }
    // warm up (JIT, key caches) for two seconds at a tenth of the rate
    await runLoad({ target, rate: Math.max(50, s.rate / 10), seconds: 2, senders: s.senders })
    const before = await rssKiB(pid)
    let peak = before
    const timer = setInterval(() => { rssKiB(pid).then(r => { peak = Math.max(peak, r) }, () => {}) }, 250)
    timer.unref() // a failed run must not keep the process alive
    const st0 = await node.api.call<Record<string, any>>('GET', '/v1/status')
    const report = await runLoad({ target, rate: s.rate, seconds: s.seconds, senders: s.senders })
    clearInterval(timer)
    const st1 = await node.api.call<Record<string, any>>('GET', '/v1/status', undefined, { timeoutMs: 10_000 })
    const after = await rssKiB(pid)
    peak = Math.max(peak, after)
    const nodeReceived = st1.overlay.envelopes.received - st0.overlay.envelopes.received
    const r = { report, nodeReceived, rssBeforeMiB: before / 1024, rssPeakMiB: peak / 1024, rssAfterMiB: after / 1024 }
    console.log(JSON.stringify({ ...report, nodeReceived, rssMiB: [r.rssBeforeMiB, r.rssPeakMiB, r.rssAfterMiB].map(x => Math.round(x)) }))
    assert.is(report.failed, 0, `failed sends: ${report.errors.join('; ')}`)
    assert.is(report.outstanding, 0, 'messages neither acked nor failed')
    assert.is(report.delivered, report.sent)
    assert.is(nodeReceived, report.sent, 'the node counted a different number of new messages than were sent')
    // the generator shares the machine with the node: on a loaded 2-core box it can fall behind
    // the schedule (it then sends in bursts); below half the rate the run measures nothing
    assert.ok(report.achievedRate >= s.rate * 0.5, `the generator only reached ${report.achievedRate.toFixed(0)}/s of ${s.rate}/s`)
    assert.ok(r.rssPeakMiB - r.rssBeforeMiB <= s.rssBoundMiB, `RSS grew from ${r.rssBeforeMiB.toFixed(0)} to a peak of ${r.rssPeakMiB.toFixed(0)} MiB (bound +${s.rssBoundMiB})`)
    return r
  } finally {
    await net.stop()
  }
}
