// Review F0/F1/F5: a remote peer or a remote job's spec never changes this node's connection gate
// (the private set, src/net/routes/private-peers.ts). An invitation (garbage, refused or accepted)
// neither releases a peer the node's grid job made private nor makes anyone private; a remote
// job's `routing: overlay` routes the member's own frames only; the member's operator's `direct`
// wins (an overlay job is refused ROUTING_REFUSED, an auto one stays direct); job routes are keyed
// by (coordinator, job id), so a remote job reusing a local job's id changes nothing of it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { OverlayOnlyPeers } from '../../../src/net/routes/private-peers.js'
import { privacyOf } from '../../../src/training/job-privacy.js'
import { TrainingService } from '../../../src/training/service.js'
import { decodeTrainingMessage, encodeTrainingMessage } from '../../../src/training/transport.js'
import { encodeSpec, parseTrainingSpec } from '../../../src/training/spec.js'
import { memberRouting, type TrainingRouting } from '../../../src/training/overlay-route.js'
import type { Trainer } from '../../../src/training/trainer.js'
import { EnvelopeHub, isolatedNode, received, until } from './overlay-hub.js'

const fakeTrainer = (): Trainer => ({
  paramCount: 4,
  getParams: async () => new Float32Array(4),
  setParams: async () => {},
  step: async () => ({ loss: 0, steps: 0 }) as any,
  evaluate: async () => ({ loss: 0, accuracy: 0 }) as any,
  close: async () => {}
})

async function rig (routing: TrainingRouting = 'auto'): Promise<any> {
  const hub = new EnvelopeHub()
  const priv = new OverlayOnlyPeers()
  priv.hangUp = () => {}
  const x = await isolatedNode(hub, 'X')
  const { privacy } = privacyOf({ privatePeers: priv, config: { bootstrap: [], routing: { mode: routing } } } as any)
  const v = await isolatedNode(hub, 'V', { privacy, routing })
  const svc = new TrainingService(v.transport, { createTrainer: async () => fakeTrainer() })
  await svc.start(); await x.transport.start()
  const replies = received(x.transport)
  const stop = async (): Promise<void> => { await svc.stop(); await x.transport.stop(); v.messenger.close(); x.messenger.close() }
  return { priv, x, v, svc, replies, stop }
}

const invite = (jobId: string, spec: Uint8Array): any => ({ invite: { jobId, spec, rank: 0, shards: 1, fromRound: 0, stateHash: new Uint8Array(), donors: [] } })

test('F0: a peer the node\'s grid job made private stays private after its garbage, refused or accepted invitations', async () => {
  const r = await rig()
  const X = r.x.id.toString()
  try {
    r.priv.add(X) // the node's `routing: overlay` grid job made X private
    r.x.transport.send(r.v.id.toString(), invite('j-garbage', new Uint8Array([1, 2, 3])))
    await until(() => r.replies.length === 1, 'the refusal')
    assert.is(r.replies[0].msg.inviteReply?.accepted, false)
    r.x.transport.send(r.v.id.toString(), invite('j-ok', encodeSpec(parseTrainingSpec({ routing: 'auto' }))))
    await until(() => r.replies.length === 2, 'the acceptance')
    assert.is(r.replies[1].msg.inviteReply?.accepted, true)
    assert.ok(r.priv.has(X), 'X is still private')
    assert.not.ok(r.priv.wantedDirect(X), 'and not marked wanted direct')
    assert.ok(r.priv.joinIfUnwanted(X), 'the grid job keeps it private at its next lease request')
  } finally { await r.stop() }
})

test('F1: an accepted remote `routing: overlay` job makes nobody private; its route is keyed by its coordinator', async () => {
  const r = await rig()
  const X = r.x.id.toString()
  try {
    // this node's own job of the same id runs with routing direct
    r.v.transport.jobRoutes.set('shared-id', 'direct')
    r.x.transport.send(r.v.id.toString(), invite('shared-id', encodeSpec(parseTrainingSpec({ routing: 'overlay' }))))
    await until(() => r.replies.length === 1, 'the acceptance')
    assert.is(r.replies[0].msg.inviteReply?.accepted, true)
    assert.is(r.priv.size, 0, 'the private set is untouched')
    assert.is(r.v.transport.jobRoutes.get('shared-id'), 'direct', 'the local job keeps its routing')
    assert.is(r.v.transport.jobRoutes.get('shared-id', X), 'overlay', 'the remote job\'s frames take the overlay')
    // the member's frames to a peer the coordinator names (here: a slice to some peer) route only
    const named = (await isolatedNode(new EnvelopeHub(), 'N')).id.toString()
    r.v.transport.send(named, { stateRequest: { jobId: 'shared-id' } }, undefined, X)
    assert.not.ok(r.priv.has(named), 'a peer the remote coordinator names is not made private')
    await r.svc.stop()
    assert.is(r.v.transport.jobRoutes.get('shared-id'), 'direct', 'the remote job\'s end does not end the local job\'s route')
    assert.is(r.v.transport.jobRoutes.get('shared-id', X), undefined)
  } finally { await r.stop() }
})

test('F5: a member whose operator set routing.mode direct refuses an overlay job (ROUTING_REFUSED) and keeps an auto job direct', async () => {
  assert.is(memberRouting('direct', 'overlay'), 'refuse')
  assert.is(memberRouting('direct', 'auto'), 'direct')
  assert.is(memberRouting('direct', undefined), 'direct')
  assert.is(memberRouting('overlay', 'direct'), 'overlay')
  assert.is(memberRouting('auto', 'overlay'), 'overlay')
  assert.is(memberRouting(undefined, undefined), 'auto')
  const r = await rig('direct')
  const X = r.x.id.toString()
  // the member's replies (a direct node's training frames never take the overlay, and the test hub has no connections)
  const sent: any[] = []
  const send = r.v.transport.send.bind(r.v.transport)
  r.v.transport.send = (to: string, msg: any, routing?: TrainingRouting, coordinator?: string) => { sent.push({ to, msg, routing }); send(to, msg, routing, coordinator) }
  // a direct node takes no training frames over the overlay: the invitation is handed in as if read from a stream
  const deliver = (m: any): void => { (r.v.transport as any).dispatch(X, decodeTrainingMessage(encodeTrainingMessage(m) as Uint8Array)) }
  try {
    deliver(invite('ov', encodeSpec(parseTrainingSpec({ routing: 'overlay' }))))
    await until(() => sent.length === 1, 'the refusal')
    const rep = sent[0].msg.inviteReply
    assert.is(rep?.accepted, false)
    assert.is(rep?.code, 'ROUTING_REFUSED')
    assert.match(rep?.reason ?? '', /routing.mode: direct/)
    assert.is(r.v.bad.length, 0, 'an honest mismatch: not charged')
    deliver(invite('au', encodeSpec(parseTrainingSpec({ routing: 'auto' }))))
    await until(() => sent.length === 2, 'the acceptance')
    assert.is(sent[1].msg.inviteReply?.accepted, true)
    assert.is(sent[1].routing, 'direct', 'the reply keeps the operator\'s direct')
    assert.is(r.v.transport.jobRoutes.get('au', X), 'direct', 'an auto job stays direct on this member')
  } finally { await r.stop() }
})

test('the private set: training never evicts the node\'s own entries, and a training job\'s end leaves a peer the grid job also wants', () => {
  const priv = new OverlayOnlyPeers()
  priv.hangUp = () => {}
  const { privacy } = privacyOf({ privatePeers: priv, config: { bootstrap: [] } } as any)
  const p = privacy!
  // training first, then the grid job (add is then a no-op on the set): the training job's end keeps P
  p.overlayOnly('P', 'job1')
  priv.add('P')
  p.jobEnded('job1')
  assert.ok(priv.has('P'), 'the grid job still needs P')
  // a local auto job never releases a grid job's peer
  p.connectionWanted('P')
  assert.ok(priv.has('P'))
  assert.not.ok(priv.wantedDirect('P'))
  // full set: training adds nothing rather than evicting the grid job's peers
  for (let i = 0; priv.size < 4096; i++) priv.add(`g${i}`)
  p.overlayOnly('T', 'job2')
  assert.not.ok(priv.has('T'))
  assert.ok(priv.has('g0') && priv.has('P'))
})

test.run()
