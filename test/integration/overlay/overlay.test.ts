// The whole overlay on 8 daemon hosts (kad-dht, ping) on 127.0.0.1: peers learn each other's
// declared locations from shuffles, estimate RTT, gossip capability records into each other's
// caches, and exchange sealed messages.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startDhtNodes, stopDhtNodes, type DhtNode } from './dht-nodes.js'
import { Overlay } from '../../../src/net/overlay/index.js'
import { VIVALDI_PROTOCOL } from '../../../src/net/overlay/overlay.js'
import { encodeFrame } from '../../../src/wire/frame.js'
import { waitUntil } from '../../helpers/wait.js'

const cities: Array<[number, number]> = [[48.85, 2.35], [52.52, 13.4], [51.5, -0.12], [40.42, -3.7], [35.68, 139.69], [40.71, -74.0], [-33.87, 151.2], [1.35, 103.82]]
let nodes: DhtNode[] = []
const overlays: Overlay[] = []
const inbox: string[][] = cities.map(() => [])

test.before(async () => {
  nodes = await startDhtNodes(cities.length)
  for (let i = 0; i < nodes.length; i++) {
    const o = new Overlay(nodes[i].host, {
      secretKey: nodes[i].secretKey,
      location: { lat: cities[i][0], lon: cities[i][1] },
      membership: { periodMs: 200, viewSize: 5, shuffleLength: 3, seed: i + 1 },
      // the last node never measures on its own, so its coordinate holds still for the probe test
      // (every 300 ms: seven probers at 100 ms filled the probed node's 8 inbound probe streams under
      // load, and the 9th stream was reset)
      vivaldiIntervalMs: i === cities.length - 1 ? 0 : 300,
      onMessage: m => inbox[i].push(new TextDecoder().decode(m.payload))
    })
    await o.start()
    overlays.push(o)
  }
})

test.after(async () => {
  for (const o of overlays) await o.stop()
  await stopDhtNodes(nodes)
})

test('peers learn declared locations and RTT estimates; nearest() sorts by prediction', async () => {
  await waitUntil('locations to spread', () => overlays.every(o => [...o.known.values()].filter(k => k.location !== undefined).length >= 4), { ms: 15_000, everyMs: 10 })
  await waitUntil('an RTT measurement', () => overlays[0].nearest().some(e => e.measuredRttMs !== undefined), { ms: 10_000, everyMs: 10 })
  const near = overlays[0].nearest()
  // the one prediction (settled Vivaldi, else geo, else raw Vivaldi: core/geo/predicted-rtt.ts)
  const keyOf = (e: typeof near[number]): number => e.predictedRttMs ?? e.measuredRttMs ?? Infinity
  for (let i = 1; i < near.length; i++) assert.ok(keyOf(near[i - 1]) <= keyOf(near[i]), `order at ${i}: ${JSON.stringify(near)}`)
  const london = near.find(e => e.peer === nodes[2].id)
  if (london?.distanceKm !== undefined) assert.ok(Math.abs(london.distanceKm - 344) < 10, `${london.distanceKm}`)
  assert.ok(near.every(e => e.geoRttMs === undefined || e.geoRttMs > 0))
})

test('a Vivaldi probe returns an RTT sample and the peer\'s current coordinate; a malformed probe costs score', async () => {
  const last = overlays.length - 1
  const fixed = [12.5, -40.25, 3.75, 0.5]
  overlays[last].coordinate.set(fixed.slice(0, overlays[last].coordinate.length))
  // 15 s, not the default 5 s: the suite runs this beside daemons under attack (security tests)
  // one more try if the stream is reset: the probed node takes at most 8 probe streams at once and
  // the six other nodes probe in the background
  const rtt = await overlays[0].measure(nodes[last].id, { signal: AbortSignal.timeout(15_000) })
    .catch(async (err: Error) => {
      if (!/reset/i.test(err.message)) throw err
      return await overlays[0].measure(nodes[last].id, { signal: AbortSignal.timeout(15_000) })
    })
  assert.ok(rtt > 0 && rtt < 15_000, `rtt ${rtt}`) // a sample, not a timing check: the suite runs this beside loaded daemons
  const learnt = overlays[0].known.get(nodes[last].id)?.vivaldi
  assert.ok(learnt !== undefined)
  for (let i = 0; i < learnt.length; i++) assert.ok(Math.abs(learnt[i] - overlays[last].coordinate[i]) < 1e-3, `component ${i}: ${learnt[i]} vs ${overlays[last].coordinate[i]}`)
  assert.ok((overlays[0].known.get(nodes[last].id)?.rttSamples?.length ?? 0) >= 1)
  // garbage instead of a probe: the answering node charges the sender
  const before = overlays[1].scores.score(Date.now(), nodes[0].id)
  const stream = await nodes[0].host.dialProtocol(nodes[1].host.peerId, VIVALDI_PROTOCOL)
  stream.send(encodeFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])))
  await waitUntil('the malformed probe to be charged', () => overlays[1].scores.score(Date.now(), nodes[0].id) < before, { ms: 15_000, everyMs: 10 })
})

test('a published capability is gossiped into the other caches and answers queries locally', async () => {
  await overlays[1].publishCapability({ gpus: [{ model: 'RTX4090', count: 4, memoryMib: 24576 }], cpuCores: 32, memoryMib: 131072, ttlMs: 600_000, capabilities: ['gpu:RTX4090'] })
  // the querying node must be among those the gossip reached (under load the last one may lag)
  await waitUntil('capability gossip', () => overlays[0].capabilities.cache.size > 0 && overlays.filter((o, i) => i !== 1 && o.capabilities.cache.size > 0).length >= 6, { ms: 30_000, everyMs: 10 })
  const r = await overlays[0].capabilities.query({ capability: 'gpu:RTX4090', want: 1, minGpuCount: 4 })
  assert.is(r.results.length, 1)
  assert.ok(r.fromCache)
})

test('sealed message between overlay nodes', async () => {
  await overlays[0].envelopes.send(nodes[4].id, new TextEncoder().encode('hello tokyo'), { k: 2 })
  await waitUntil('delivery', () => inbox[4].length > 0, { ms: 15_000, everyMs: 10 })
  assert.equal(inbox[4], ['hello tokyo'])
})

test.run()
