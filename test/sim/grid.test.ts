// The grid scenario: its offline lower bound (grid-bound.ts) and the driver that pumps the
// shipped job session. The bound must count only capacity that is up and respect arrivals; the
// driver must complete every task once, never beat the bound, and (the regression behind the
// old 4.7x) not leave capacity idle while jobs wait: a busy small run stays near its bound.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { capacitySteps, streamLowerBound, sizeLowerBound } from '../../simulator/scenarios/grid-bound.js'
import { SCENARIOS } from '../../simulator/scenarios/index.js'

const f64 = (xs: number[]): Float64Array => Float64Array.from(xs)

test('bound: one job at t=0 is its work ÷ capacity, or its longest task when that is longer', () => {
  const steps = capacitySteps(0, 10, [])
  assert.is(streamLowerBound({ arrivals: f64([0]), work: f64([1000]), longest: f64([5]), steps }), 100)
  assert.is(streamLowerBound({ arrivals: f64([0]), work: f64([1000]), longest: f64([300]), steps }), 300)
})

test('bound: capacity that is down does not count', () => {
  // 10 units up, half of it down from t=50 to t=150
  const steps = capacitySteps(0, 10, [{ t: 50, delta: -5 }, { t: 150, delta: 5 }])
  // 0..50: 500; 50..150: 500 → 1000 at t=150
  assert.is(streamLowerBound({ arrivals: f64([0]), work: f64([1000]), longest: f64([0]), steps }), 150)
  const always = capacitySteps(0, 10, [])
  assert.ok(streamLowerBound({ arrivals: f64([0]), work: f64([1000]), longest: f64([0]), steps }) > streamLowerBound({ arrivals: f64([0]), work: f64([1000]), longest: f64([0]), steps: always }))
})

test('bound: a late job\'s work fits only after it arrives', () => {
  const steps = capacitySteps(0, 10, [])
  // job 0 (t=0) is tiny; job 1 arrives at t=100 with 1000 units: it cannot use the capacity before t=100
  const b = streamLowerBound({ arrivals: f64([0, 100]), work: f64([10, 1000]), longest: f64([1, 1]), steps })
  assert.is(b, 200)
})

test('bound: changes before the start and at the same time fold into steps', () => {
  const steps = capacitySteps(10, 4, [{ t: 5, delta: 1 }, { t: 20, delta: -2 }, { t: 20, delta: 1 }])
  assert.equal(steps, [{ t: 10, cap: 5 }, { t: 20, cap: 4 }])
})

test('bound: a copy runs whole on one slot, so long tasks wait for fast slots (task sizes)', () => {
  // a fast provider (perf 2, one slot) and a slow one (perf 0.1, ten slots): capacity 3
  const perf = f64([2, 0.1]); const slots = Int32Array.from([1, 10])
  const steps = capacitySteps(0, 3, [])
  // two tasks of 100 at t=0: capacity says 200 / 3 = 66.7, the longest on the fastest 50; but the
  // slow slots need 1,000 for either task, so both run on the fast one: 100
  const from = streamLowerBound({ arrivals: f64([0]), work: f64([200]), longest: f64([50]), steps })
  assert.ok(Math.abs(from - 200 / 3) < 1e-9)
  const b = sizeLowerBound({ arrivals: f64([0]), tasks: [f64([100, 100])], perf, slots, from, feasible: 1000 })
  assert.ok(Math.abs(b - 100) <= 1, `size bound ${b}`)
  // small tasks fit the slow slots too: nothing to add
  assert.is(sizeLowerBound({ arrivals: f64([0]), tasks: [f64(Array(30).fill(2))], perf, slots, from: 20, feasible: 1000 }), 20)
  // a late job's long task: it arrives at 500 and needs the fast slot for 50
  const late = sizeLowerBound({ arrivals: f64([0, 500]), tasks: [f64([1]), f64([100])], perf, slots, from: 0, feasible: 10_000 })
  assert.ok(Math.abs(late - 550) <= 1, `late ${late}`)
  // three tasks of 100, one slot of perf 3 and eleven of perf 1: before 100 only the fast slot
  // may end one, so all three would queue on it (300 ÷ 3): 100, not 300 ÷ 14 (capacity) nor 100 ÷ 3 (the longest)
  const three = sizeLowerBound({ arrivals: f64([0]), tasks: [f64([100, 100, 100])], perf: f64([3, 1]), slots: Int32Array.from([1, 11]), from: 300 / 14, feasible: 1000 })
  assert.ok(Math.abs(three - 100) <= 1, `three ${three}`)
  // two tasks, slots of perf 10, 9 and fifty of 0.5: the second needs the perf-9 slot (both on the fastest end at 20): 100 ÷ 9
  const two = sizeLowerBound({ arrivals: f64([0]), tasks: [f64([100, 100])], perf: f64([10, 9, 0.5]), slots: Int32Array.from([1, 1, 50]), from: 0, feasible: 1000 })
  assert.ok(Math.abs(two - 100 / 9) <= 1, `two ${two}`)
})

const runGrid = async (nodes: number, count: number, seed: number, extra: Record<string, number> = {}) =>
  await SCENARIOS.grid.run({ nodes, seed, count, extra })

test('driver: a busy small run completes every task once, never beats its bound, and stays near it', async () => {
  const r = await runGrid(1000, 30, 3)
  for (const inv of r.invariants) assert.ok(inv.ok, `${inv.name}: ${inv.detail}`)
  const s = r.summary
  assert.ok(Number(s.offeredLoad) > 0.8, `the run is busy (load ${s.offeredLoad})`)
  assert.ok(Number(s.busyRefusals) > 0, 'providers refused BUSY: jobs waited')
  assert.ok(Number(s.totalVsLowerBound) >= 1 && Number(s.randomTotalVsLowerBound) >= 1, `no schedule beats the bound: ${s.totalVsLowerBound}`)
  // leases that reserved slots left them idle and jobs that held a few leases never asked for more: 4.7x before
  assert.ok(Number(s.totalVsLowerBound) < 1.8, `makespan ${s.totalVsLowerBound}x its lower bound`)
  assert.ok(Number(s.leaseRounds) > 30, `jobs asked for more leases while copies ran (${s.leaseRounds} rounds for 30 jobs)`)
})

test('driver: a loaded stream (1/10 of the README\'s 10k one) gets its stragglers twinned on faster slots', async () => {
  // 1,000 providers, 100 jobs, one every 5 s, 20 candidates per round: capacity binds (load ~0.97).
  // Seed 1 was 4.83x its bound when copies stayed on the slow leftovers they were committed to and
  // jobs at the 64-lease cap never looked for the providers freeing up (speculation.ts); 3.0x now,
  // 2.98x with releases on evidence (speed-evidence.ts: 635 speed releases, 1,631 before)
  const r = await runGrid(1000, 100, 1, { providerShare: 1, gapS: 5, candidates: 20 })
  for (const inv of r.invariants) assert.ok(inv.ok, `${inv.name}: ${inv.detail}`)
  const s = r.summary
  assert.ok(Number(s.offeredLoad) > 0.9, `the run is loaded (load ${s.offeredLoad})`)
  assert.ok(Number(s.totalVsLowerBound) < 3.6, `makespan ${s.totalVsLowerBound}x its lower bound`)
  // 90% and 99% of the tasks are accepted before the last one, and not before the bound allows 90% of the work
  assert.ok(Number(s.p90AcceptedVsLowerBound) > 0.5 && Number(s.p90AcceptedVsLowerBound) <= Number(s.p99AcceptedVsLowerBound), `p90 ${s.p90AcceptedVsLowerBound}, p99 ${s.p99AcceptedVsLowerBound}`)
  assert.ok(Number(s.p99AcceptedVsLowerBound) < Number(s.totalVsLowerBound), `p99 ${s.p99AcceptedVsLowerBound}, last ${s.totalVsLowerBound}`)
  // the lease cap counts slots (lease-cap.ts): with 64 leases at most, up to 27 jobs queued copies
  // at the cap while capacity idled (their leases kept the 1 slot their offers had free); none now
  assert.is(s.jobsQueuedAtCapPeak, 0, `jobs queued at their lease cap: ${s.jobsQueuedAtCapPeak}`)
})

test('driver: the timeline samples the run every 100 s; a job held at its lease cap shows in it (--set maxLeases)', async () => {
  const free = await runGrid(1000, 30, 3)
  const tight = await runGrid(1000, 30, 3, { maxLeases: 2 })
  for (const inv of tight.invariants) assert.ok(inv.ok, `${inv.name}: ${inv.detail}`)
  assert.is(tight.params.maxLeases, 2)
  const util = tight.charts.find(c => c.id === 'grid-timeline-util')!.series[0].data
  assert.ok(util.length >= 3, `${util.length} samples`)
  for (let i = 1; i < util.length; i++) assert.ok(Math.abs(util[i].x - util[i - 1].x - 100) < 1e-6, `step ${util[i - 1].x} -> ${util[i].x}`)
  for (const p of util) assert.ok(p.y >= 0 && p.y <= 1, `utilisation ${p.y}`)
  // two leases a job: its copies queue at the cap, and the stream takes longer than with the runner's 64
  assert.ok(Number(tight.summary.jobsQueuedAtCapPeak) > 0, `peak ${tight.summary.jobsQueuedAtCapPeak}`)
  assert.ok(Number(tight.summary.totalS) > Number(free.summary.totalS), `cap 2: ${tight.summary.totalS} s, cap 64: ${free.summary.totalS} s`)
})

test('driver: the same seed gives the same run', async () => {
  const a = await runGrid(500, 8, 7)
  const b = await runGrid(500, 8, 7)
  assert.equal(a.summary, b.summary)
})

test.run()
