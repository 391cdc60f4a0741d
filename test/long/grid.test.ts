// Long variants of the grid scenarios: 1,000 tasks over 8 provider processes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runGridScenario } from '../integration/grid-scenario.js'

test('a 1,000-task job over 8 peer processes completes with every result correct', async () => {
  const r = await runGridScenario({ providers: 8, tasks: 1000, killShare: 0 })
  assert.ok(r.summary.providersUsed >= 6)
})

test('kill -9 of 30% of the peers mid-job: completes, every result correct', async () => {
  // 3,000 tasks: the kill at 20% done must land while the killed peers have copies in flight
  const r = await runGridScenario({ providers: 8, tasks: 3000, killShare: 0.3 })
  assert.ok(r.summary.leasesLost >= 1 || r.summary.retries >= 1)
})

test.run()
