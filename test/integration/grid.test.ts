// Quick variants: real peer processes, every result checked (long variants: test/long/grid.test.ts).
// Both jobs run on one network (a submitter and 4 providers started once): the kill -9 job last.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LocalNetwork } from '../../demo/network.js'
import { startGrid, runGridJob, type Grid } from './grid-scenario.js'

const net = new LocalNetwork()
let grid: Grid

test.before(async () => { grid = await startGrid(net, 4) })
test.after(async () => { await net.stop() })

test('a 300-task job over 4 provider processes completes with every result correct', async () => {
  const r = await runGridJob(grid, { providers: 4, tasks: 300, killShare: 0 })
  assert.ok(r.summary.providersUsed >= 3, `used ${String(r.summary.providersUsed)} providers`)
})

test('kill -9 of a quarter of the providers (ones the job uses) mid-job: the job completes, every result correct', async () => {
  // 2,400 tasks: long enough that the kill (at 20% done, after the explain reads that pick whom to
  // kill) lands while the killed provider still has copies in flight (800 ran in ~0.7 s once
  // providers ran a bundle's tasks in one go: the kill came after its last copy, nothing was lost)
  const r = await runGridJob(grid, { providers: 4, tasks: 2400, killShare: 0.25 })
  assert.ok(r.summary.leasesLost >= 1 || r.summary.retries >= 1, `no lost lease or retry recorded: ${JSON.stringify(r.summary)}`)
})

test.run()
