// Live-node fuzzing, long variant: 100,000 malformed frames at every protocol registered by a running
// daemon while it runs grid jobs back to back (see test/fuzz/live-scenario.ts for what is
// asserted: node up, RSS peak within +128 MiB of the warmed-up node, every fuzzing identity
// penalised or dropped, no replayed envelope counted twice, every job result correct).
// The daemons this test starts run with a 320 MiB V8 heap limit, as an operator bounds a node's
// memory (NODE_OPTIONS=--max-old-space-size=N). Without a limit V8 lets the heap of a node under
// 100,000 hostile frames grow to ~600 MiB RSS before it collects; with one, the node collects
// earlier and stays up within the bound, which shows the growth is garbage, not a leak.
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=320`.trim()
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runLiveFuzz } from '../fuzz/live-scenario.js'

test('100,000 malformed frames: the node stays up, bounded, punishes every sender, and finishes its jobs', async () => {
  const frames = Number(process.env.FUZZ_FRAMES ?? 100_000)
  const r = await runLiveFuzz({ frames, tasksPerJob: 40, rssBoundMiB: 128, seed: 7, log: s => { console.log(s) } })
  console.log(JSON.stringify({ frames: r.fuzz.framesSent, eventStreamDrops: r.eventStreamDrops, streams: r.fuzz.streams, refused: r.fuzz.refusedStreams, identities: r.fuzz.identities.length, penalized: r.penalized, dropped: r.dropped, jobs: r.jobs, tasksChecked: r.tasksChecked, rssMiB: [r.rssBeforeMiB, r.rssPeakMiB, r.rssAfterMiB].map(x => Math.round(x)), seconds: r.fuzz.elapsedMs / 1000, vivaldiAnswers: r.fuzz.vivaldiAnswers, vivaldiError: r.vivaldiError, byCase: r.fuzz.byCase, byProtocol: r.fuzz.byProtocol, byHostile: r.fuzz.byHostile }))
  console.log(JSON.stringify(r.hostile.map(h => ({ protocol: h.protocol, case: h.name, charged: h.charged, charge: h.charge, reply: h.reply }))))
  assert.ok(r.fuzz.framesSent >= frames)
  assert.ok(r.jobs >= 2, `only ${r.jobs} jobs ran during fuzzing`)
  for (const p of r.fuzz.protocols) assert.ok((r.fuzz.byProtocol[p] ?? 0) > 0, `protocol ${p} was never fuzzed`)
})

test.run()
