// The unstructured layer on 20 real libp2p nodes on 127.0.0.1 (one process): shuffles fill the
// views, announcements spread, random walks find a rare record, dead peers leave the views.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startNode, connect, type TestNode } from './nodes.js'
import { waitUntil } from '../../helpers/wait.js'
import { MembershipService } from '../../../src/net/overlay/membership.js'
import { ANNOUNCE_KIND } from '../../../src/net/overlay/announce.js'

const N = 20
const nodes: TestNode[] = []
const services: MembershipService[] = []
const heard: Array<Set<string>> = []
const HOLDERS = new Set([7, 13])

test.before(async () => {
  for (let i = 0; i < N; i++) nodes.push(await startNode())
  for (let i = 0; i < N; i++) {
    heard.push(new Set())
    const s = new MembershipService(nodes[i].node, {
      secretKey: nodes[i].secretKey,
      location: { lat: 10 + i, lon: 20 - i },
      viewSize: 6,
      shuffleLength: 3,
      periodMs: 300,
      // generous: on a loaded 2-core machine a dial + answer can take seconds
      responseTimeoutMs: 3000,
      // 6, not the default 4: push gossip misses about e^-fanout of the nodes, and a loaded box adds
      // send timeouts on top (a clean-clone run under a CPU hog left the announcement short once)
      fanout: 6,
      gossipTtl: 6,
      walkTtl: 12,
      walkTimeoutMs: 8000,
      seed: i + 1,
      onAnnouncement: a => heard[i].add(Buffer.from(a.id).toString('hex')),
      matchWalk: q => HOLDERS.has(i) && new TextDecoder().decode(q) === 'gpu:H100' ? [new TextEncoder().encode(`record-of-${i}`)] : []
    })
    await s.start()
    services.push(s)
  }
  // bootstrap: everyone knows node 0 and its predecessor
  for (let i = 1; i < N; i++) {
    await connect(nodes[i], nodes[0])
    if (i > 1) await connect(nodes[i], nodes[i - 1])
    services[i].addPeers(i > 1 ? [nodes[0].id, nodes[i - 1].id] : [nodes[0].id])
  }
  services[0].addPeers([nodes[1].id])
})

test.after(async () => {
  for (const s of services) await s.stop()
  for (const n of nodes) await n.node.stop()
})

test('shuffles fill every view with distinct live peers', async () => {
  await waitUntil('views to fill', () => services.every(s => s.peers().length >= 5), { ms: 40_000, everyMs: 10 })
  for (const [i, s] of services.entries()) {
    const p = s.peers()
    assert.not.ok(p.includes(nodes[i].id))
    assert.is(new Set(p).size, p.length)
  }
  // views mix: node 0 is no longer in everyone's view
  const withZero = services.filter(s => s.peers().includes(nodes[0].id)).length
  assert.ok(withZero < N - 1, `node 0 is in ${withZero} views`)
})

test('an announcement reaches (almost) every node, each once', async () => {
  const id = services[3].announce(ANNOUNCE_KIND.capability, new TextEncoder().encode('cap'))
  const reached = (): number => heard.filter(h => h.has(id)).length
  // 45 s: the suite runs this beside daemons under attack
  await waitUntil('announcement spread', () => reached() >= N - 2, { ms: 45_000, everyMs: 10 }).catch((err: Error) => {
    throw new Error(`${err.message}: ${reached()} of ${N} nodes heard it; send failures ${services.reduce((a, s) => a + s.stats.sendFailures, 0)}`)
  })
  assert.ok(services.every(s => s.stats.announcements <= 1))
})

test('a random walk finds a rare record', async () => {
  const found = await services[0].walk(new TextEncoder().encode('gpu:H100'), { walkers: 4, ttl: 12, want: 1 })
  assert.ok(found.length >= 1, 'walk found nothing')
  const text = new TextDecoder().decode(found[0])
  assert.ok(text === 'record-of-7' || text === 'record-of-13', text)
  const none = await services[0].walk(new TextEncoder().encode('gpu:none'), { walkers: 2, ttl: 4 })
  assert.equal(none, [])
})

test('stopped peers leave the live views', async () => {
  const dead = [2, 5, 9, 14, 18]
  for (const i of dead) { await services[i].stop(); await nodes[i].node.stop() }
  const deadIds = new Set(dead.map(i => nodes[i].id))
  const live = services.filter((_, i) => !dead.includes(i))
  await waitUntil('dead peers to be dropped', () => live.every(s => s.peers().every(p => !deadIds.has(p))), { ms: 40_000, everyMs: 10 })
  assert.ok(live.every(s => s.peers().length >= 3))
})

test.run()
