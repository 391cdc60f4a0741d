// A replacement peer invited into a running job that accepted and is still loading the state is not
// invited again while it loads (review s11 L1): its node would take a second invitation for the job
// as a resume, stop the loading worker and start the load over. In-process transports, one real member.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { TrainingMessage } from '../../../src/training/transport.js'
import { hubTransport, type HubTransport } from './hub-transport.js'
import { TrainingService } from '../../../src/training/service.js'
import { TrainingSession } from '../../../src/training/session.js'

// (10 ms a frame: a round, RoundStart out and Report back, takes at least 20 ms)
test('a joiner that accepted the invitation and still loads is not invited again when its join timeout passes', async () => {
  const hub: HubTransport[] = []
  const coordinator = await hubTransport(hub, 10)
  const member = await hubTransport(hub, 10)
  const service = new TrainingService(member)
  await service.start()
  // the replacement accepts and then loads for longer than the join timeout (it never sends Join here);
  // its load may take 10 min per donor, so however slow the box, the job ends inside that wait
  const joiner = await hubTransport(hub, 10)
  const invites: TrainingMessage[] = []
  joiner.listen((from, msg) => {
    if (msg.invite == null) return
    invites.push(msg)
    joiner.send(from, { inviteReply: { jobId: msg.invite.jobId, accepted: true, reason: '', paramCount: 0, code: '' } })
  })
  const spec = { model: { kind: 'mlp' as const, hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 1, batchSize: 8, evalEvery: 0, rounds: 80, groupSize: 2, minPeers: 1 }
  const session = new TrainingSession({ transport: coordinator, spec, peers: [member.self], joinTimeoutMs: 200, joinLoadTimeoutMs: 600_000, candidates: async () => [joiner.self] })
  const rounds: number[] = []
  session.on('progress', p => rounds.push(p.round))
  await session.run()
  assert.is(rounds.length, 80)
  assert.is(invites.length, 1, `invited ${invites.length} times while it loaded`)
  assert.ok(invites[0].invite!.fromRound > 0)
  await service.stop()
})

test.run()
