// Every scenario at a small size: its own invariant checks hold, and the figures that
// say the protocols work are in range (so a broken driver or core machine fails here).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SCENARIOS } from '../../simulator/scenarios/index.js'
import { renderHtml } from '../../simulator/report/html.js'

const run = async (name: string, seed = 3) => {
  const sc = SCENARIOS[name]
  const r = await sc.run({ nodes: sc.smallNodes, seed, count: sc.smallCount, extra: sc.smallExtra })
  for (const inv of r.invariants) assert.ok(inv.ok, `${name}: ${inv.name}: ${inv.detail}`)
  assert.ok(r.perf.events > 0, 'events counted')
  assert.ok(r.perf.liveBytesPerNode > 0, 'memory per node reported')
  return r
}

test('churn: gossip reaches most online nodes, lookups mostly succeed', async () => {
  const r = await run('churn')
  assert.ok(Number(r.summary['static.gossipReach']) > 0.85, `reach ${r.summary['static.gossipReach']}`)
  assert.ok(Number(r.summary['session10m.lookupSuccess']) > 0.8)
  assert.ok(Number(r.summary['session10m.unreachableRpcsPerLookup']) > 0, 'churn leaves dead contacts that cost RPCs')
})

test('capability: the core search returns nearest A100 providers with high recall', async () => {
  const r = await run('capability')
  assert.ok(Number(r.summary.recallOfNearest) > 0.7, `recall ${r.summary.recallOfNearest}`)
  assert.ok(Number(r.summary.meanDhtLookupsPerQuery) >= 1)
})

test('multipath: more copies deliver more when relays fail', async () => {
  const r = await run('multipath')
  assert.ok(Number(r.summary['k3.failed30.delivery']) > Number(r.summary['k1.failed30.delivery']))
})

test('geo: geo-aware relays stretch less than random ones', async () => {
  const r = await run('geo')
  assert.ok(Number(r.summary.relayStretchGeoMean) < Number(r.summary.relayStretchRandomMean))
})

test('grid: the shipped job machine completes every task once through busy providers and churn; the cost model beats random', async () => {
  const r = await run('grid')
  assert.ok(Number(r.summary.makespanVsRandom) < 1, `ratio ${r.summary.makespanVsRandom}`)
  assert.ok(Number(r.summary.busyRefusals) > 0, 'providers were busy (BUSY refusals): jobs waited for slots')
  assert.ok(Number(r.summary.copiesLostToChurn) > 0, 'churn lost running copies, which were re-run')
  assert.ok(Number(r.summary.totalVsLowerBound) >= 1, `no schedule beats the lower bound: ${r.summary.totalVsLowerBound}`)
})

test('vivaldi: error falls over the rounds', async () => {
  const r = await run('vivaldi')
  assert.ok(Number(r.summary.finalMedianRelError) < Number(r.summary.firstMedianRelError))
})

test('html report inlines Chart.js and one canvas per chart', async () => {
  const r = await run('lookup')
  const html = renderHtml([r])
  assert.ok(html.includes('Chart.js') || html.includes('chart.js'), 'chart library inlined')
  assert.is((html.match(/<canvas/g) ?? []).length, r.charts.length)
  assert.not.ok(html.includes('src="http'), 'no network fetches')
})

test.run()
