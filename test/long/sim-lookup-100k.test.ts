// Long variant: the `lookup` scenario at 100,000 nodes, one lookup per node, against the
// simulator's goals (>= 99% success, <= 2 KB live memory per node after setup, every
// lookup finished once). Throughput is a benchmark figure (npm run bench -- sim), not
// asserted here: wall time depends on what else the machine runs.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runLookup } from '../../simulator/scenarios/lookup.js'

test('lookup at 100k nodes: success, memory per node, invariants', () => {
  const r = runLookup({ nodes: 100_000, seed: 11 })
  for (const inv of r.invariants) assert.ok(inv.ok, `${inv.name}: ${inv.detail}`)
  assert.ok(Number(r.summary.successRate) >= 0.99, `success ${r.summary.successRate}`)
  assert.ok(Number(r.summary.meanHops) > 1.5 && Number(r.summary.meanHops) < 4, `hops ${r.summary.meanHops}`)
  if (r.perf.forcedGc) assert.ok(r.perf.liveBytesPerNode <= 2048, `live bytes per node ${r.perf.liveBytesPerNode}`)
})

test.run()
