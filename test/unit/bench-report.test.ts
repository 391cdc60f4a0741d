// The README results table (bench/report.ts): re-rendering after one named benchmark keeps the other
// benchmarks' rows and run lines from the table as it was, replaces the fresh one's, and lists each
// benchmark's own run (rows from different days are not presented as one run).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readmeTable, parseReadmeTable } from '../../bench/report.js'
import type { BenchResult } from '../../bench/lib.js'

const previous = [
  '| bench | metric | ours | baseline (same run) | ratio | goal | |',
  '|---|---|---|---|---|---|---|',
  '| net | rtt_p50_ms | 0.0784 ms | 0.0689 | 1.14× | <= 1.3x raw | met |',
  '| grid | e2e_daemons_tasks_per_s | 759.7 tasks/s | 3357 | 0.226× | >= 0.5x the executor alone | **not met** |',
  '| grid | dispatch_tasks_per_s | 11487 tasks/s | 1.97e+5 | 0.0584× | >= 5000 tasks/s | met |',
  '',
  "Each benchmark's run (full report with charts: `bench/results/report.html`):",
  '- `net`: 2026-11-22 UTC on an old machine',
  '- `grid`: 2026-12-06T21:32 UTC on an old machine'
].join('\n')

const grid: BenchResult = {
  name: 'grid',
  machine: '2 x AMD EPYC',
  date: '2026-12-07T16:40:12.000Z',
  metrics: { e2e_daemons_tasks_per_s: { value: 1300, unit: 'tasks/s', baseline: 2400, ratio: 1300 / 2400, goal: '>= 0.5x the executor alone', met: true } }
}

test('a fresh result replaces its benchmark\'s rows; the others are kept with their run lines', () => {
  const table = readmeTable([grid], previous)
  const { rows, runs } = parseReadmeTable(table)
  assert.equal(rows.get('net'), ['| net | rtt_p50_ms | 0.0784 ms | 0.0689 | 1.14× | <= 1.3x raw | met |'])
  assert.equal(rows.get('grid')?.length, 1, 'the old grid rows are gone, the fresh one is there')
  assert.match(rows.get('grid')?.[0] ?? '', /\| grid \| e2e_daemons_tasks_per_s \| 1300 tasks\/s \| 2400 \| 0\.542× \| >= 0\.5x the executor alone \| met \|/)
  assert.equal(runs.get('net'), '2026-11-22 UTC on an old machine')
  assert.equal(runs.get('grid'), '2026-12-07T16:40 UTC on 2 x AMD EPYC')
  assert.ok(table.indexOf('| net |') < table.indexOf('| grid |'), 'benchmarks keep the report order')
})

test('with no table before, only the fresh results are listed', () => {
  const { rows, runs } = parseReadmeTable(readmeTable([grid]))
  assert.equal([...rows.keys()], ['grid'])
  assert.equal([...runs.keys()], ['grid'])
})

test('a kept benchmark without a run line says its date was not recorded', () => {
  const { runs } = parseReadmeTable(readmeTable([grid], previous.split('\n').filter(l => !l.startsWith('- `net`')).join('\n')))
  assert.match(runs.get('net') ?? '', /not recorded/)
})

test.run()
