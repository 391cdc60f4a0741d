// Long variant of the training demonstration, 8 peer processes:
//  - int8 codec: ≥ 90% and ~3.9x fewer bytes per round than fp32 would send
//  - two peers SIGKILLed at different rounds and a replacement process joining mid-job
//    (state loaded from a member): the job completes above the bar with 7 members
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TrainingTransport } from '../../src/training/transport.js'
import { TrainingSession, runTrainingJob } from '../../src/training/session.js'
import type { TrainingSpecInput } from '../../src/training/spec.js'
import { encodedSize } from '../../src/core/training/codecs.js'
import { spawnPeer, startTrainingCluster, stopTrainingCluster, type PeerProcess } from '../integration/training-peers.js'
import { multiaddr } from '@multiformats/multiaddr'
import type { Host } from '../../src/net/host.js'

const BASE: TrainingSpecInput = { rounds: 24, localSteps: 20, batchSize: 32, learningRate: 0.1, seed: 3, evalEvery: 6, deadline: { initialMs: 60_000 } }
let peers: PeerProcess[] = []
let host: Host
let transport: TrainingTransport

test.before(async () => { ({ peers, host, transport } = await startTrainingCluster(8)) })
test.after(async () => { await stopTrainingCluster({ peers, host, transport }) })

test('8 peers with int8 reach 90% and send ~3.9x fewer bytes than fp32', async () => {
  const r = await runTrainingJob({ transport, spec: { ...BASE, codec: { kind: 'int8' } }, peers: peers.map(p => p.peerId) })
  const P = r.params.length
  const perRound = r.history.reduce((a, h) => a + h.bytesSent, 0) / r.history.length
  // fp32 would send 2·(n−1)/n·4P per peer per round
  const fp32PerRound = 8 * 2 * 7 * encodedSize({ kind: 'fp32' }, Math.floor(P / 8))
  console.log(`int8, 8 peers: ${(r.accuracy * 100).toFixed(2)}%, ${perRound.toFixed(0)} B/round (fp32 ~${fp32PerRound}), ${(fp32PerRound / perRound).toFixed(2)}x`)
  assert.ok(r.accuracy >= 0.9, `accuracy ${r.accuracy}`)
  assert.ok(fp32PerRound / perRound > 3.8)
})

test('two peers killed and one replacement joining: the job completes above the bar', async () => {
  const [v1, v2] = [peers[3], peers[6]]
  const replacement = await spawnPeer()
  peers.push(replacement)
  for (const p of peers.slice(0, 8)) replacement.child.stdin!.write(`dial ${p.addrs[0]}\n`)
  await host.dial(multiaddr(replacement.addrs[0]))
  const session = new TrainingSession({ transport, spec: { ...BASE, codec: { kind: 'fp32' } }, peers: peers.slice(0, 8).map(p => p.peerId) })
  let joinSent = false
  session.on('progress', (p) => {
    if (p.round === 5) v1.child.kill('SIGKILL')
    if (p.round === 9) v2.child.kill('SIGKILL')
    // the coordinator invites it (as `POST /v1/training/:id/members` does): a Join nobody invited is
    // not admitted (the self-started `join` this test used before was dropped since, and the job
    // ended without the replacement)
    if (p.round === 11 && !joinSent) joinSent = session.addMember(replacement.peerId)
  })
  const r = await session.run()
  const sizes = r.history.map(h => h.members.length)
  console.log(`kill x2 + join: ${(r.accuracy * 100).toFixed(2)}%, members per round ${sizes.join(',')}`)
  assert.ok(!r.members.includes(v1.peerId) && !r.members.includes(v2.peerId))
  assert.ok(r.members.includes(replacement.peerId), 'the replacement took part')
  assert.is(sizes[sizes.length - 1], 7)
  assert.ok(r.accuracy >= 0.9, `accuracy ${r.accuracy}`)
})

test.run()
