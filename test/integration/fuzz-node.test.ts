// Live-node fuzzing (quick variant): a few thousand malformed frames at every protocol a running
// daemon registered (identify lists them; test/fuzz/targets.ts has a crafter table per protocol)
// while it runs grid jobs, plus well-formed hostile messages one identity per case; see
// test/fuzz/live-scenario.ts for what is asserted. The long variant (100,000 frames) is
// test/long/fuzz-node.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runLiveFuzz } from '../fuzz/live-scenario.js'
import { FUZZ_CASES } from '../fuzz/live-fuzzer.js'

// RSS bound: 224 MiB, the inbound guard's node-wide frame budget (160 MiB: frames a node may buffer by
// design) plus the overlay's budget for messages being assembled or served (64 MiB, src/core/routing/chunker.ts);
// measured this session: +155 MiB on a quiet box, +186 MiB in a clean-clone run with a CPU hog
test('a node under a few thousand malformed frames stays up, bounded, punishes the senders, and finishes its jobs', async () => {
  const r = await runLiveFuzz({ frames: Number(process.env.FUZZ_FRAMES ?? 3000), tasksPerJob: 20, rssBoundMiB: 224, log: s => { console.log(s) } })
  console.log(JSON.stringify({ frames: r.fuzz.framesSent, eventStreamDrops: r.eventStreamDrops, streams: r.fuzz.streams, refused: r.fuzz.refusedStreams, identities: r.fuzz.identities.length, penalized: r.penalized, dropped: r.dropped, jobs: r.jobs, tasksChecked: r.tasksChecked, rssMiB: [r.rssBeforeMiB, r.rssPeakMiB, r.rssAfterMiB].map(x => Math.round(x)), seconds: r.fuzz.elapsedMs / 1000, vivaldiAnswers: r.fuzz.vivaldiAnswers, vivaldiError: r.vivaldiError, byCase: r.fuzz.byCase, byProtocol: r.fuzz.byProtocol, byHostile: r.fuzz.byHostile }))
  console.log(JSON.stringify(r.hostile.map(h => ({ protocol: h.protocol, case: h.name, charged: h.charged, charge: h.charge, reply: h.reply }))))
  assert.ok(r.fuzz.framesSent >= Number(process.env.FUZZ_FRAMES ?? 3000))
  for (const k of FUZZ_CASES) assert.ok((r.fuzz.byCase[k] ?? 0) > 0, `case ${k} was never sent`)
  // every registered protocol was reached, the all-reduce and Vivaldi ones included
  for (const p of r.fuzz.protocols) assert.ok((r.fuzz.byProtocol[p] ?? 0) > 0, `protocol ${p} was never fuzzed`)
  for (const p of ['/dbc/allreduce/1.0.0', '/dbc/vivaldi/1.0.0', '/dbc/task/1.0.0']) assert.ok(r.fuzz.protocols.includes(p), `${p} is not among the daemon's protocols`)
})

test.run()
