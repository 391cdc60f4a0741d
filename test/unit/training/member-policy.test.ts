// A training member under its provider policy and its payment checks (src/training/service.ts):
// a membership holds a compute slot like a grid task (a busy provider refuses BUSY, and the slot
// comes back when the job ends or the invitation is refused later); a round the payment check
// refuses (PAYER_BEHIND) is sat out and its code reaches the coordinator, whose session lists it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TrainingTransport, encodeTrainingMessage, decodeTrainingMessage, type TrainingHost, type TrainingMessage, type TrainingMessageInput } from '../../../src/training/transport.js'
import { TrainingService, type TrainingServiceInit } from '../../../src/training/service.js'
import { encodeSpec, parseTrainingSpec } from '../../../src/training/spec.js'
import { TrainingSession } from '../../../src/training/session.js'

class LoopTransport extends TrainingTransport {
  peer: LoopTransport | undefined
  override async start (): Promise<void> {}
  override async stop (): Promise<void> {}
  override send (to: string, msg: TrainingMessageInput): void {
    const bytes = encodeTrainingMessage(msg)
    const decoded = decodeTrainingMessage(bytes instanceof Uint8Array ? bytes : bytes.subarray())
    if (this.peer?.self === to) { const p = this.peer; queueMicrotask(() => { (p as any).dispatch(this.self, decoded) }) }
  }
}

async function loop (): Promise<LoopTransport> {
  return new LoopTransport({ peerId: peerIdFromPrivateKey(await generateKeyPair('Ed25519')) } as unknown as TrainingHost)
}

const SPEC = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 5, testPerClass: 5 }, groupSize: 1, rounds: 2, localSteps: 1, batchSize: 4 })

async function rig (init: Partial<TrainingServiceInit>): Promise<{ coord: LoopTransport, member: LoopTransport, service: TrainingService }> {
  const coord = await loop()
  const member = await loop()
  coord.peer = member
  member.peer = coord
  const service = new TrainingService(member, init)
  await service.start()
  return { coord, member, service }
}

/** The next message of `kind` for `jobId` the coordinator receives. */
async function next (coord: LoopTransport, jobId: string, pick: (m: TrainingMessage) => boolean): Promise<TrainingMessage> {
  return await new Promise(resolve => {
    const off = coord.listen((_from, msg) => { if (pick(msg)) { off(); resolve(msg) } })
    void jobId
  })
}

async function invite (r: { coord: LoopTransport, member: LoopTransport }, jobId: string): Promise<TrainingMessage> {
  const reply = next(r.coord, jobId, m => m.inviteReply?.jobId === jobId)
  r.coord.send(r.member.self, { invite: { jobId, spec: encodeSpec(SPEC), rank: 0, shards: 1 } })
  return await reply
}

test('a membership holds a slot: a busy provider refuses BUSY; the slot comes back when the job ends or the job is refused later', async () => {
  const held = new Set<string>()
  let free = 0 // grid tasks hold every slot
  const r = await rig({
    holdSlot: (jobId) => {
      if (held.has(jobId)) return undefined
      if (free === 0) return 'all slots for this shape are busy (no CPU slot free)'
      free--; held.add(jobId); return undefined
    },
    release: (jobId) => { if (held.delete(jobId)) free++ },
    admitPayment: async (inv) => inv.jobId === 'unpaid' ? { code: 'NO_ESCROW', reason: 'no escrow for job x on chain 1' } : undefined
  })
  const busy = await invite(r, 'job-b')
  assert.is(busy.inviteReply?.accepted, false)
  assert.is(busy.inviteReply?.code, 'BUSY')
  assert.match(busy.inviteReply?.reason ?? '', /^BUSY: all slots for this shape are busy/)
  assert.is(r.service.workers.size, 0)
  free = 1 // a grid task ended
  const first = await invite(r, 'job-a')
  assert.is(first.inviteReply?.accepted, true)
  assert.equal([...held], ['job-a'])
  assert.is(free, 0, 'grid tasks now see the slot taken')
  // the job ends: its slot is free again, and a refused invitation gives its slot back at once
  r.coord.send(r.member.self, { finish: { jobId: 'job-a', round: 0, sendModel: false } })
  await r.service.workers.get('job-a')?.done
  await new Promise(resolve => setTimeout(resolve, 10))
  assert.equal([...held], [])
  const unpaid = await invite(r, 'unpaid')
  assert.is(unpaid.inviteReply?.code, 'NO_ESCROW')
  assert.equal([...held], [], 'the refused job holds no slot')
  assert.is(free, 1)
  await r.service.stop()
})

test('a round the payment check refuses is sat out, and the coordinator is told the code', async () => {
  const asked: number[] = []
  const r = await rig({ admitRound: async (_jobId, round) => { asked.push(round); return { code: 'PAYER_BEHIND', reason: 'payer is 0.01 DBC behind on job 0xabc… (credit 0.005 DBC)' } } })
  assert.is((await invite(r, 'job-c')).inviteReply?.accepted, true)
  const refusal = next(r.coord, 'job-c', m => m.inviteReply?.jobId === 'job-c')
  const report = next(r.coord, 'job-c', m => m.report != null)
  r.coord.send(r.member.self, { roundStart: { jobId: 'job-c', round: 0, members: [r.member.self], deadlineMs: 5000, addrs: [] } })
  const m = await refusal
  assert.is(m.inviteReply?.accepted, false)
  assert.is(m.inviteReply?.code, 'PAYER_BEHIND')
  assert.match(m.inviteReply?.reason ?? '', /^round 0: PAYER_BEHIND: payer is 0\.01 DBC behind/)
  assert.equal(asked, [0])
  const w = r.service.workers.get('job-c')!
  assert.is(w.refusedRounds, 1)
  assert.is(w.rounds.length, 0, 'no round ran')
  const none = await Promise.race([report.then(() => 'report'), new Promise(resolve => setTimeout(() => { resolve('none') }, 200))])
  assert.is(none, 'none', 'no report (and no receipt) for a refused round')
  await r.service.stop()
})

test('the coordinator lists a member\'s round refusal, and the job fails with a payment code only (a member cannot pick another)', async () => {
  for (const [code, expected] of [['PAYER_BEHIND', 'PAYER_BEHIND'], ['NODE_STOPPING', 'TRAINING_FAILED']]) {
    const r = await rig({ admitRound: async () => ({ code, reason: 'behind' }) })
    const session = new TrainingSession({ transport: r.coord, spec: { ...SPEC, deadline: { initialMs: 300, minMs: 100 } }, peers: [r.member.self] })
    const err = await session.run().then(() => undefined, (e: Error & { code?: string }) => e)
    assert.ok(err !== undefined, 'the job failed')
    assert.is(err.code, expected, err.message)
    assert.equal(session.refusals.map(x => [x.peer, x.code]), [[r.member.self, code]])
    assert.match(session.refusals[0].reason, new RegExp(`^round 0: ${code}: behind$`))
    await r.service.stop()
  }
})

test.run()
