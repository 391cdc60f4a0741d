// Stream flood and slowloris against a real daemon (issue 12, "What must be shown", at a
// smaller scale than bench/load.ts): one hostile peer opens 400 streams across the task, relay
// and all-reduce protocols and 20 throw-away identities 20 each, every stream declaring the
// protocol's largest frame; then on half the streams all but the last byte is sent and held,
// on the other half a few bytes a second trickle in (slowloris). Honest grid jobs run on the
// node throughout.
// Asserts: the node stays up and answers status, its RSS stays within 256 MiB of idle, every
// honest result is correct, and every hostile identity that got a stream open was charged.
// Timings (status latency, job times) are printed, not asserted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runFloodScenario, type FloodScenarioResult } from '../load/flood-attack.js'

const RSS_BOUND_MIB = 256

function check (r: FloodScenarioResult): void {
  const { identities, ...flood } = r.flood
  const { samples, ...figures } = r
  console.log(JSON.stringify({ ...figures, flood }))
  assert.ok(r.after.alive, 'the target daemon exited')
  assert.ok(Number.isFinite(r.after.statusMs), 'the target does not answer GET /v1/status after the attack')
  assert.ok(r.attack.honestJobs >= 1 && r.attack.tasksChecked > 0, 'no honest job completed during the attack')
  assert.ok(r.attack.rssAboveIdleMiB <= RSS_BOUND_MIB, `RSS rose ${r.attack.rssAboveIdleMiB.toFixed(0)} MiB above idle (${r.idle.rssMiB.toFixed(0)} MiB); bound +${RSS_BOUND_MIB} MiB; ${(flood.bytesSent / 2 ** 20).toFixed(0)} MiB sent`)
  // identities that never got a stream open were refused at the door: nothing to charge
  assert.ok(r.charged.mainPenalized || r.charged.mainBanned, `the big hostile peer (${flood.main.opened} streams opened) was not charged`)
  const active = identities.slice(1).filter(i => i.opened > 0)
  const charged = r.charged.smallPenalized
  assert.ok(charged >= active.length, `${charged} of ${active.length} small hostile identities with open streams were charged`)
}

// one scenario, both attacks at once (half the streams filled and held, half trickled), so the
// file stays near a minute; bench/load.ts runs them apart at full scale
test('flood: maximal frames held but for their last byte, and trickled (slowloris)', async () => {
  const r = await runFloodScenario({
    attack: { mode: 'mixed', mainStreams: 400, identities: 20, streamsPerIdentity: 20, holdMs: 15_000, maxTotalBytes: 2 ** 30, trickleBytesPerSec: 4 },
    honestTasks: 20,
    safetyMiB: 1024,
    log: s => { console.log(s) }
  })
  check(r)
})

test.run()
