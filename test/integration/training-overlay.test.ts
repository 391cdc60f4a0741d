// test-timeout-s: 600
// A training job's own `routing: overlay` (its spec's routing, what `dbc job submit --routing`
// sets), real daemons on loopback: a relay, a coordinator and two members that could all connect
// directly. The job's frames (invitations, rounds, slices, reports, the model) travel as sealed
// envelopes through the relay only: every node's route to each other peer of the job is the
// overlay with no byte on a connection, the coordinator holds no connection with a member (nor a
// member with the other) while the job runs, and every round has both members; once it ends they
// may connect again. The job's view shows its routing and each member's route.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'

const LOC = '52.52,13.40'
const EXTRA = ['--no-connection-monitor']
const ROUNDS = 4
const SPEC = { model: { kind: 'mlp', hidden: 32 }, dataset: { trainPerClass: 100, testPerClass: 50 }, groupSize: 2, rounds: ROUNDS, localSteps: 5, batchSize: 16, learningRate: 0.1, seed: 5, evalEvery: ROUNDS, deadline: { initialMs: 30_000 }, routing: 'overlay' }

const net = new LocalNetwork()
let relay: LocalNode
let coordinator: LocalNode
let members: LocalNode[] = []

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, ms = 180_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(250)
  }
}
const peersOf = async (n: LocalNode): Promise<string[]> => (await n.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')).peers.map(p => p.peerId)

test.before(async () => {
  relay = await net.start({ name: 'relay1', location: LOC, extra: EXTRA }, [], { timeoutMs: 240_000 })
  // started side by side: daemon start-up is most of this test's time on a loaded machine
  ;[coordinator, ...members] = await Promise.all(['coordinator', 'member-a', 'member-b'].map(async name => await net.start({ name, location: LOC, extra: EXTRA }, [relay.addrs[0]], { timeoutMs: 240_000 })))
  // the overlay's path: the relay holds a connection to every node
  await waitFor('the relay to hold every node', async () => { const p = await peersOf(relay); return [coordinator, ...members].every(n => p.includes(n.peerId)) ? true : undefined })
})

test.after(async () => { await net.stop() })

test('a training job with routing: overlay crosses the overlay only: no connection between its peers, every round with both members', async () => {
  const peers = members.map(m => m.peerId)
  const t0 = Date.now()
  const { jobId } = await coordinator.api.call<{ jobId: string }>('POST', '/v1/training', { spec: SPEC, peers }, { timeoutMs: 60_000 })
  let j: any
  let samples = 0
  const connected: string[] = []
  for (;;) {
    j = await coordinator.api.call<any>('GET', `/v1/training/${jobId}`, undefined, { timeoutMs: 10_000 })
    // once a round ran every peer of the job made the others private: from then on, while it runs,
    // no connection between them (they leave the private set when the job ends)
    if (j.round >= 0 && j.status === 'running') {
      samples++
      const byNode = await Promise.all([coordinator, ...members].map(async n => ({ n, p: await peersOf(n) })))
      for (const { n, p } of byNode) for (const o of [coordinator, ...members]) if (o !== n && p.includes(o.peerId)) connected.push(`${n.spec.name} -> ${o.spec.name}`)
    }
    if (j.status !== 'running' || Date.now() - t0 > 400_000) break
    await sleep(300)
  }
  const ms = Date.now() - t0
  assert.is(j.status, 'done', `training ended ${JSON.stringify({ status: j.status, error: j.error, refusals: j.refusals })}`)
  const history: any[] = j.history
  assert.equal(history.map(h => h.round), Array.from({ length: ROUNDS }, (_, i) => i), 'every round ran once')
  for (const h of history) assert.equal([...h.members].sort(), [...peers].sort(), `round ${String(h.round)} had both members`)
  const names = new Map([relay, coordinator, ...members].map(n => [n.peerId, n.spec.name]))
  const routes: Array<{ from: string, to: string, kind: string, relays: string[], bytes: Record<string, number> }> = []
  for (const n of [coordinator, ...members]) {
    const st = await n.api.call<any>('GET', '/v1/status')
    for (const [to, r] of Object.entries<any>(st.training?.trainingRoutes ?? {})) routes.push({ from: n.spec.name, to: names.get(to) ?? to, kind: r.kind, relays: (r.relays ?? []).map((x: string) => names.get(x) ?? x), bytes: r.bytes })
  }
  console.log(`${ROUNDS} rounds in ${ms} ms, accuracy ${String(j.accuracy)}; round ms ${history.map(h => Math.round(h.roundMs)).join(',')}; ${samples} samples of the peers' connections, connected in ${connected.length}`)
  for (const r of routes) console.log(`  ${r.from} -> ${r.to}: ${r.kind} via ${r.relays.join(', ')}, bytes ${JSON.stringify(r.bytes)}`)
  const [a, b] = members.map(m => m.spec.name)
  for (const [from, to] of [['coordinator', a], ['coordinator', b], [a, 'coordinator'], [b, 'coordinator'], [a, b], [b, a]]) {
    const r = routes.find(x => x.from === from && x.to === to)
    assert.ok(r !== undefined, `${from} sent to ${to}`)
    assert.is(r.kind, 'overlay', `${from} -> ${to}`)
    assert.equal(r.relays, ['relay1'], `${from} -> ${to} went through the relay`)
    assert.ok((r.bytes.overlay ?? 0) > 0 && Object.keys(r.bytes).every(k => k === 'overlay'), `${from}'s frames to ${to} crossed the overlay only: ${JSON.stringify(r.bytes)}`)
  }
  assert.ok(samples > 0)
  assert.equal(connected, [], 'no connection between the job\'s peers while it ran')
  // the job over, its peers leave the private sets: connections are allowed again (gossip, the DHT reopen them)
  await waitFor('a connection between the peers again', async () => (await peersOf(coordinator)).some(p => peers.includes(p)) ? true : undefined, 120_000)
  // the job's view: its routing and how the coordinator reaches each member
  assert.is(j.routing, 'overlay')
  for (const m of members) assert.is(j.routes?.[m.peerId]?.kind, 'overlay', `the view names ${m.spec.name}'s route`)
  assert.ok(Number(j.accuracy) > 0.5, `the model learned: ${String(j.accuracy)}`)
})

test.run()
