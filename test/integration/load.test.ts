// Load (quick variant): one node receives 1,000 sealed task messages per second for 10 s from
// four peers; no message lost, p99 printed, RSS bounded. Long variant: test/long/load.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runLoadScenario } from '../load/load-scenario.js'

test('1,000 messages/s for 10 s from 4 peers: none lost, memory bounded', async () => {
  const r = await runLoadScenario({ rate: 1000, seconds: Number(process.env.LOAD_SECONDS ?? 10), senders: 4, rssBoundMiB: 96 })
  assert.ok(r.report.p99Ms > 0)
})

test.run()
