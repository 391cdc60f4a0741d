// Review s11 H2 at the daemon's rates: a hostile provider let past the outbound read budget that
// sends at just over the minimum rate (256 KiB/s) used to make every other result wait for its
// whole frame, and an honest 16 MiB result was lost at its provider's 30 s write timeout. Now the
// slow one is paused again (not charged) and the honest one goes; silent holders of part of a frame
// are cut while results wait. Real libp2p hosts on 127.0.0.1 (src/net/guard/outbound.ts; rig:
// lease-budget-rig.ts). Frame deadline, minimum rate, grace, keep rate and silent period as shipped.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { registerTaskProtocol } from '../../src/net/tasks.js'
import { encodeFramePrefix } from '../../src/wire/frame.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import type { Host } from '../../src/net/host.js'
import { FRAME_DEADLINE_MS, FRAME_MIN_BYTES_PER_SEC } from '../../src/net/guard/index.js'
import { MiB, hostile, leaseAndRun, rig, sleep, tcpHost, type Rig } from './lease-budget-rig.js'

const rate = FRAME_MIN_BYTES_PER_SEC

/** 16 MiB prefix, `burst` bytes at once, then 1.25x the minimum rate in 64 KiB pieces until the stream ends. */
function trickle (burst: number, timers: Array<ReturnType<typeof setInterval>>) {
  return (s: Stream): void => {
    s.send(encodeFramePrefix(16 * MiB)); s.send(new Uint8Array(burst))
    const t = setInterval(() => { if (s.status !== 'open') { clearInterval(t); return } try { s.send(new Uint8Array(64 * 1024)) } catch { clearInterval(t) } }, Math.round(64 * 1024 * 1000 / (rate * 1.25)))
    timers.push(t)
  }
}

async function honestResult (r: Rig, seed: number): Promise<{ outcome: string, peer: string, host: Host }> {
  const secret = new Uint8Array(32).fill(seed)
  const host = await tcpHost(seed)
  const fp = new FakeProvider({ secretKey: secret, compute: () => new Uint8Array(16 * MiB - 1024).fill(1) })
  await registerTaskProtocol(host, fp, { heartbeatMs: 100 })
  const { outcome } = await leaseAndRun(r, host, 1, AbortSignal.timeout(120_000), fp)
  return { outcome: await outcome, peer: host.peerId.toString(), host }
}

test('an honest 16 MiB result behind a provider trickling at 1.25x the minimum rate past the budget completes (budgets 4 / 2 MiB)', async () => {
  const r = await rig({ outboundBufferBytes: 4 * MiB, outboundPeerBufferBytes: 2 * MiB, frameDeadlineMs: FRAME_DEADLINE_MS, frameMinBytesPerSec: rate })
  const timers: Array<ReturnType<typeof setInterval>> = []
  const hosts: Host[] = []
  try {
    const bad = await hostile(51, trickle(2 * MiB, timers))
    hosts.push(bad)
    const slow = await leaseAndRun(r, bad, 10, AbortSignal.timeout(120_000))
    await sleep(1500) // it is past the budget, let through
    const honest = await honestResult(r, 57)
    hosts.push(honest.host)
    const st = r.guard.outbound.status()
    console.log(`  honest: ${honest.outcome}; charges ${JSON.stringify(r.charges)}; outbound ${JSON.stringify(st)}`)
    // before (the slow one kept the way for its whole frame): 'lost: the lease stream broke: The stream has been reset' after ~30 s
    assert.is(honest.outcome, `ok ${16 * MiB - 1024}`)
    assert.ok(!r.charges.some(c => c.peer === honest.peer), 'the honest provider is not charged')
    // the slow one was paused again; on a loaded machine its timer's jitter can put it under the
    // minimum rate first, and then it is charged instead (seen at load 15-20, at b24ffcd too)
    assert.ok(st.takenBack as number >= 1 || r.charges.some(c => c.peer === bad.peerId.toString()), 'the slow one was paused again (or charged under the minimum rate)')
    void slow
  } finally {
    for (const t of timers) clearInterval(t)
    await r.stop()
    for (const h of hosts) await h.stop()
  }
})

test('shipped budgets: 4 silent providers holding 15 MiB each and 1 trickler do not cost an honest 16 MiB result', async () => {
  const r = await rig({ frameDeadlineMs: FRAME_DEADLINE_MS, frameMinBytesPerSec: rate })
  const timers: Array<ReturnType<typeof setInterval>> = []
  const hosts: Host[] = []
  try {
    const fillers = await Promise.all([70, 71, 72, 73].map(async seed => await hostile(seed, (s: Stream) => { s.send(encodeFramePrefix(16 * MiB)); s.send(new Uint8Array(15 * MiB)) })))
    hosts.push(...fillers)
    await Promise.all(fillers.map(async (h, i) => await leaseAndRun(r, h, 30 + i, AbortSignal.timeout(120_000))))
    await sleep(1500)
    const bad = await hostile(51, trickle(4 * MiB, timers))
    hosts.push(bad)
    await leaseAndRun(r, bad, 10, AbortSignal.timeout(120_000))
    await sleep(1500)
    const honest = await honestResult(r, 57)
    hosts.push(honest.host)
    // a silent holder is cut within the silent period (5 s) + a sweep while results wait (only as many as block them)
    for (const end = Date.now() + 15_000; r.guard.outbound.stats.silentCut < 1 && Date.now() < end;) await sleep(100)
    const st = r.guard.outbound.status()
    console.log(`  honest: ${honest.outcome}; charges ${JSON.stringify(r.charges.map(c => c.code))}; outbound ${JSON.stringify(st)}`)
    // before: 'lost: the lease stream broke: The stream has been reset' after ~30 s, nobody charged (review s11 H2)
    assert.is(honest.outcome, `ok ${16 * MiB - 1024}`)
    assert.ok(!r.charges.some(c => c.peer === honest.peer), 'the honest provider is not charged')
    // Which hostile stream is cut (a silent holder at 5 s while results wait, or the trickler at its
    // frame deadline) depends on timing: under a CPU hog the honest result got through on the
    // exemption first and nobody waited any more, so no silent cut came (clean-clone run, session 11).
    // The silent cut itself is unit-tested (test/unit/net/outbound-budget-fair.test.ts).
    const hostileIds = new Set([...fillers, bad].map(h => h.peerId.toString()))
    assert.ok(r.charges.every(c => hostileIds.has(c.peer)), 'only hostile providers are charged')
  } finally {
    for (const t of timers) clearInterval(t)
    await r.stop()
    for (const h of hosts) await h.stop()
  }
})

test.run()
