// Live-node fuzzing (quick variant): a few thousand malformed frames at every dbc protocol of a
// running daemon while it runs grid jobs; see test/fuzz/live-scenario.ts for what is asserted.
// The long variant (100,000 frames) is test/long/fuzz-node.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runLiveFuzz } from '../fuzz/live-scenario.js'

test('a node under a few thousand malformed frames stays up, bounded, punishes the senders, and finishes its jobs', async () => {
  const r = await runLiveFuzz({ frames: Number(process.env.FUZZ_FRAMES ?? 3000), tasksPerJob: 20, rssBoundMiB: 96, log: s => { console.log(s) } })
  console.log(JSON.stringify({ frames: r.fuzz.framesSent, eventStreamDrops: r.eventStreamDrops, streams: r.fuzz.streams, refused: r.fuzz.refusedStreams, identities: r.fuzz.identities.length, penalized: r.penalized, dropped: r.dropped, jobs: r.jobs, tasksChecked: r.tasksChecked, rssMiB: [r.rssBeforeMiB, r.rssPeakMiB, r.rssAfterMiB].map(x => Math.round(x)), seconds: r.fuzz.elapsedMs / 1000, byCase: r.fuzz.byCase }))
  assert.ok(r.fuzz.framesSent >= Number(process.env.FUZZ_FRAMES ?? 3000))
  for (const k of ['random-bytes', 'garbage-body', 'truncated', 'oversized', 'wrong-type', 'bad-signature', 'tampered', 'replay']) assert.ok((r.fuzz.byCase[k] ?? 0) > 0, `case ${k} was never sent`)
})

test.run()
