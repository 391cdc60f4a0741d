// A member dropped from a round (silent) may still run its worker and may come back with a late
// report: until the job ends it stays held (PEERS_BUSY: a second job of this node must not pick it
// and be refused busy by its one-job rule), and when the job ends it is told so, like the live
// members, instead of keeping its worker until the worker idles out (review s14 L6).
// In-process transports: two real members and a `ghost` that accepts the invitation, then is silent.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { TrainingMessage } from '../../../src/training/transport.js'
import { hubTransport, type HubTransport } from './hub-transport.js'
import { TrainingService } from '../../../src/training/service.js'
import { TrainingSession } from '../../../src/training/session.js'
import { stateSigner } from '../../../src/training/state-sign.js'

test('a silent member dropped from the group stays held until the job ends, and is told when it ends', async () => {
  const hub: HubTransport[] = []
  const coordinator = await hubTransport(hub)
  const members = [await hubTransport(hub), await hubTransport(hub)]
  const services = members.map(m => new TrainingService(m))
  for (const s of services) await s.start()
  const ghost = await hubTransport(hub)
  const toGhost: TrainingMessage[] = []
  ghost.listen((from, msg) => {
    toGhost.push(msg)
    if (msg.invite != null) ghost.send(from, { inviteReply: { jobId: msg.invite.jobId, accepted: true, reason: '', paramCount: 0, code: '' } })
  })
  // a short first deadline: the ghost's silence drops it after round 0 (the live members answer in ms)
  const spec = { model: { kind: 'mlp' as const, hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 1, batchSize: 8, evalEvery: 0, rounds: 12, groupSize: 3, minPeers: 2, deadline: { initialMs: 300, minMs: 300 } }
  // no replacement candidates: the group goes on with the two live members
  const session = new TrainingSession({ transport: coordinator, spec, peers: [members[0].self, members[1].self, ghost.self], candidates: async () => [] })
  const heldAfterDrop: boolean[] = []
  session.on('progress', p => {
    if (p.round >= 1) heldAfterDrop.push(session.heldPeers().includes(ghost.self))
  })
  let droppedAt: number | undefined
  session.on('progress', p => { if (droppedAt === undefined && p.dropped.includes(ghost.self)) droppedAt = p.round })
  const result = await session.run()
  for (const s of services) await s.stop()
  assert.is(droppedAt, 0, 'the ghost is dropped after the first round')
  assert.not.ok(result.members.includes(ghost.self))
  assert.ok(heldAfterDrop.length > 0 && heldAfterDrop.every(Boolean), `held after its drop: ${heldAfterDrop.join(',')}`)
  // told that the job ended (before: it heard nothing more after its drop)
  await new Promise(resolve => setTimeout(resolve, 50))
  assert.ok(toGhost.some(m => m.finish != null), 'the dropped member was told the job ended')
})

test('once a replacement brings the group back to its size, the dropped member is told and no longer held (review16a L5)', async () => {
  const hub: HubTransport[] = []
  const coordinator = await hubTransport(hub)
  const members = [await hubTransport(hub), await hubTransport(hub), await hubTransport(hub)]
  // signing members (a joiner refuses an unsigned state)
  const services = members.map(m => new TrainingService(m, { sign: stateSigner(m.secretKey) }))
  for (const s of services) await s.start()
  const ghost = await hubTransport(hub)
  const toGhost: Array<{ msg: TrainingMessage, round: number }> = []
  let round = -1
  ghost.listen((from, msg) => {
    toGhost.push({ msg, round })
    if (msg.invite != null) ghost.send(from, { inviteReply: { jobId: msg.invite.jobId, accepted: true, reason: '', paramCount: 0, code: '' } })
  })
  const spec = { model: { kind: 'mlp' as const, hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 1, batchSize: 8, evalEvery: 0, rounds: 40, groupSize: 3, minPeers: 2, deadline: { initialMs: 300, minMs: 300 } }
  // the third real member is the replacement candidate
  const session = new TrainingSession({ transport: coordinator, spec, peers: [members[0].self, members[1].self, ghost.self], candidates: async () => [members[2].self] })
  const heldWithReplacement: boolean[] = []
  session.on('progress', p => {
    round = p.round
    if (p.members.includes(members[2].self)) heldWithReplacement.push(session.heldPeers().includes(ghost.self))
  })
  const result = await session.run()
  for (const s of services) await s.stop()
  assert.ok(result.members.includes(members[2].self), 'the replacement took part')
  assert.ok(heldWithReplacement.length > 0 && heldWithReplacement.every(h => !h), `held after the replacement: ${heldWithReplacement.join(',')}`)
  const told = toGhost.find(t => t.msg.finish != null)
  assert.ok(told !== undefined && told.round < 39, `told before the job's end: ${JSON.stringify(told?.round)}`)
  assert.is(told?.msg.finish?.reason, 'replaced in the group')
})

test.run()
