// Long variant: the `lookup` scenario at 100,000 nodes, one lookup per node, in a child
// `node --expose-gc` (so live memory is measured after a real GC), against the
// simulator's goals: >= 99% success and <= 2 KB live memory per node after setup.
// Throughput is a benchmark figure (npm run bench -- sim), not asserted here: wall time
// depends on what else the machine runs.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

test('lookup at 100k nodes: success and memory per node', () => {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'simulator/bench-entry.ts', '--mode', 'fast', '--nodes', '100000', '--seed', '11'], { cwd: root, encoding: 'utf8' })
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { lookups: number, successRate: number, meanHops: number, liveBytesPerNode: number }
  assert.is(r.lookups, 100_000)
  assert.ok(r.successRate >= 0.99, `success ${r.successRate}`)
  assert.ok(r.meanHops > 1.5 && r.meanHops < 4, `hops ${r.meanHops}`)
  assert.ok(r.liveBytesPerNode <= 2048, `live bytes per node ${r.liveBytesPerNode}`)
})

test.run()
