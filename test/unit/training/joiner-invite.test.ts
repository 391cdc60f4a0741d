// A replacement peer invited into a running job that accepted and is still loading the state is not
// invited again while it loads (review s11 L1): its node would take a second invitation for the job
// as a resume, stop the loading worker and start the load over. Its loading is the donors' word, not
// its own (review s12 L6): one that accepts and never asks a donor for the state is invited again
// after the join timeout, unless its donors are older members that report nothing of whom they serve.
// In-process transports, one real member.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { TrainingMessage } from '../../../src/training/transport.js'
import { hubTransport, type HubTransport } from './hub-transport.js'
import { TrainingService } from '../../../src/training/service.js'
import { TrainingSession } from '../../../src/training/session.js'

// (10 ms a frame: a round, RoundStart out and Report back, takes at least 20 ms)
/**
 * An 80-round job on one real member with room for one more: `joiner` is the only replacement, it
 * accepts every invitation and never sends Join; `asksState`: it asks its donors for the state (it
 * loads); `oldMember`: the member's reports say nothing of whom it serves (a member from before).
 */
async function replacementInvites (opts: { asksState: boolean, oldMember?: boolean, joinTimeoutMs?: number, reportDelayMs?: number, rounds?: number }): Promise<TrainingMessage[]> {
  const hub: HubTransport[] = []
  const frameMs = 10
  const rounds = opts.rounds ?? 80
  const coordinator = await hubTransport(hub, frameMs)
  const member = await hubTransport(hub, frameMs)
  if (opts.oldMember === true) {
    const send = member.send.bind(member)
    member.send = (to, msg) => { send(to, msg.report != null ? { ...msg, report: { ...msg.report, serving: [], reportsServing: false } } : msg) }
  }
  if (opts.reportDelayMs !== undefined) {
    // long rounds: the member's reports come late (its compute, say), its other frames at once
    const send = member.send.bind(member)
    member.send = (to, msg) => { if (msg.report != null) setTimeout(() => { send(to, msg) }, opts.reportDelayMs); else send(to, msg) }
  }
  const service = new TrainingService(member)
  await service.start()
  // its load may take 10 min per donor, so however slow the box, the job ends inside that wait
  const joiner = await hubTransport(hub, frameMs)
  const invites: TrainingMessage[] = []
  joiner.listen((from, msg) => {
    if (msg.invite == null) return
    invites.push(msg)
    joiner.send(from, { inviteReply: { jobId: msg.invite.jobId, accepted: true, reason: '', paramCount: 0, code: '' } })
    if (opts.asksState) for (const d of msg.invite.donors) joiner.send(d, { stateRequest: { jobId: msg.invite.jobId } })
  })
  const spec = { model: { kind: 'mlp' as const, hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 1, batchSize: 8, evalEvery: 0, rounds, groupSize: 2, minPeers: 1 }
  const session = new TrainingSession({ transport: coordinator, spec, peers: [member.self], joinTimeoutMs: opts.joinTimeoutMs ?? 200, joinLoadTimeoutMs: 600_000, candidates: async () => [joiner.self] })
  const done: number[] = []
  session.on('progress', p => done.push(p.round))
  await session.run()
  await service.stop()
  assert.is(done.length, rounds)
  assert.ok(invites.length > 0 && invites[0].invite!.fromRound > 0)
  return invites
}

test('a joiner that accepted the invitation and loads (its donor says it served it) is not invited again when its join timeout passes', async () => {
  // the member's next report (one a round, ~20-40 ms) must name it within the join timeout: 1 s, not
  // 200 ms, so a stalled test process on a loaded box does not re-invite it (review s14 L4); the job
  // (80 rounds, >= 1.6 s) still outlasts that timeout, so a wait the report did not extend shows
  const invites = await replacementInvites({ asksState: true, joinTimeoutMs: 1000 })
  assert.is(invites.length, 1, `invited ${invites.length} times while it loaded`)
})

test('rounds longer than the join timeout: a loading joiner waits for its donor\'s first report instead of being invited again (review s14 L5)', async () => {
  // the member reports 400 ms late: a round takes longer than the 200 ms join timeout, so the donor's
  // first report naming the joiner comes after it; the wait is now two round deadlines (the adaptive
  // deadline is a multiple of the round time) before any report
  const invites = await replacementInvites({ asksState: true, joinTimeoutMs: 200, reportDelayMs: 400, rounds: 12 })
  assert.is(invites.length, 1, `invited ${invites.length} times while it loaded`)
})

test('a joiner that accepted and never asked a donor for the state is invited again after the join timeout, not after the whole load (review s12 L6)', async () => {
  const invites = await replacementInvites({ asksState: false })
  assert.ok(invites.length > 1, `invited ${invites.length} time(s): it held the slot for the whole load`)
})

test('with a donor from before (no serving reports), an accepted joiner keeps the whole load\'s wait', async () => {
  const invites = await replacementInvites({ asksState: false, oldMember: true })
  assert.is(invites.length, 1)
})

test.run()
