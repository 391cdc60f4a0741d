// `dbc peers --near` and `dbc find` show one predicted RTT for the same peer. They used to
// disagree (0.5 ms against 80.3 ms): peers --near showed raw Vivaldi, find the geo model's
// one-way time from the searched point (core/geo/predicted-rtt.ts now decides for both).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'

const net = new LocalNetwork()
let paris: LocalNode
let tokyo: LocalNode
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

test.before(async () => {
  paris = await net.start({ name: 'paris', location: 'Paris', extra: ['--no-connection-monitor'] }, [], { timeoutMs: 120_000 })
  tokyo = await net.start({ name: 'tokyo', location: 'Tokyo', extra: ['--no-connection-monitor'] }, [`${paris.addrs[0]}`], { timeoutMs: 120_000 })
})

test('find and peers --near predict the same RTT to a peer', async () => {
  type Near = { peers: Array<{ peerId: string, predictedRttMs?: number | null, geoRttMs?: number }> }
  type Found = { results: Array<{ peerId: string, predictedRttMs?: number | null, distanceKm: number }> }
  let found: Found['results'][number] | undefined
  const end = Date.now() + 120_000
  while (found === undefined && Date.now() < end) {
    const r = await paris.api.call<Found>('GET', '/v1/capabilities?capability=cpu&fresh=1', undefined, { timeoutMs: 60_000 }).catch(() => ({ results: [] }))
    found = r.results.find(x => x.peerId === tokyo.peerId)
    if (found === undefined) await sleep(500)
  }
  assert.ok(found !== undefined, 'paris finds tokyo through the capability index')
  const near = (await paris.api.call<Near>('GET', '/v1/peers/near')).peers.find(p => p.peerId === tokyo.peerId)
  assert.ok(near !== undefined, 'tokyo is among paris\'s known peers')
  // ask find again after peers --near measured: both now see the same coordinate and locations
  const again = (await paris.api.call<Found>('GET', '/v1/capabilities?capability=cpu')).results.find(x => x.peerId === tokyo.peerId)
  const a = again?.predictedRttMs
  const b = near.predictedRttMs
  assert.ok(typeof a === 'number' && typeof b === 'number', `both predict: find ${String(a)}, peers --near ${String(b)}`)
  // a probe may move the Vivaldi coordinate between the two calls: close, not an order of magnitude apart
  assert.ok(Math.abs(a - b) <= Math.max(1, 0.1 * Math.max(a, b)), `find ${a} ms, peers --near ${b} ms`)
})

test.after(async () => { await net.stop() })
test.run()
