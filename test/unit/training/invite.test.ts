// A training invitation from a stranger: refused with a reason for every case it can not run,
// charged when it names a program or breaks the schema, and the reason reaches the submitter.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { TrainingTransport, encodeTrainingMessage, decodeTrainingMessage, type TrainingHost, type TrainingMessage, type TrainingMessageInput } from '../../../src/training/transport.js'
import { TrainingService, type TrainingServiceInit } from '../../../src/training/service.js'
import type { MembershipEvent } from '../../../src/training/member-log.js'
import { BUILTIN_WORK_BUDGET, builtinRefusal, builtinWorkOf } from '../../../src/training/trainer.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'
import { TrainingSession } from '../../../src/training/session.js'
import { TrainerRegistry } from '../../../src/training/trainers.js'
import type { WireError } from '../../../src/errors.js'
import { fixtureTrainer } from './fixtures/trainer-config.js'

const uncaught: Error[] = []
process.on('uncaughtException', (err) => { uncaught.push(err) })
process.on('unhandledRejection', (err) => { uncaught.push(err as Error) })

/** A transport with no network: sends go to `peer` (encoded and decoded, as on the wire). */
class LoopTransport extends TrainingTransport {
  peer: LoopTransport | undefined
  /** More peers this transport reaches (a second inviter). */
  readonly others: LoopTransport[] = []
  readonly sent: Array<{ to: string, msg: TrainingMessage }> = []
  override async start (): Promise<void> {}
  override async stop (): Promise<void> {}
  override send (to: string, msg: TrainingMessageInput): void {
    const bytes = encodeTrainingMessage(msg)
    const decoded = decodeTrainingMessage(bytes instanceof Uint8Array ? bytes : bytes.subarray())
    this.sent.push({ to, msg: decoded })
    const target = [this.peer, ...this.others].find(p => p?.self === to)
    if (target !== undefined) queueMicrotask(() => { target.deliver(this.self, decoded) })
  }

  deliver (from: string, msg: TrainingMessage): void { (this as any).dispatch(from, msg) }
}

async function loopTransport (): Promise<LoopTransport> {
  const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return new LoopTransport({ peerId } as unknown as TrainingHost)
}

const root = mkdtempSync(join(tmpdir(), 'dbc-invite-'))
const trainers = new TrainerRegistry({
  trainers: {
    'torch-mnist': fixtureTrainer(),
    broken: { ...fixtureTrainer(), command: [join(root, 'missing-python'), 'train.py'] },
    huge: fixtureTrainer(['--params=1000000000'])
  },
  dataDir: root
})

interface Rig { inviter: LoopTransport, provider: LoopTransport, service: TrainingService, charged: Array<{ peer: string, code: string }> }

async function rig (init: Partial<TrainingServiceInit> = {}): Promise<Rig> {
  const inviter = await loopTransport()
  const provider = await loopTransport()
  inviter.peer = provider
  provider.peer = inviter
  const charged: Array<{ peer: string, code: string }> = []
  const service = new TrainingService(provider, { trainers, onBadInput: (peer: PeerId, err: WireError) => { charged.push({ peer: peer.toString(), code: err.code }) }, ...init })
  await service.start()
  return { inviter, provider, service, charged }
}

/** Sends an invitation with raw spec JSON and waits for the reply. */
async function invite (r: Rig, spec: unknown, jobId = Math.random().toString(16).slice(2), from = r.inviter): Promise<{ accepted: boolean, reason: string, paramCount: number }> {
  const bytes = typeof spec === 'string' ? new TextEncoder().encode(spec) : new TextEncoder().encode(JSON.stringify(spec))
  return await new Promise(resolve => {
    const off = from.listen((_from, msg) => {
      if (msg.inviteReply?.jobId !== jobId) return
      off()
      resolve({ accepted: msg.inviteReply.accepted, reason: msg.inviteReply.reason, paramCount: msg.inviteReply.paramCount })
    })
    from.send(r.provider.self, { invite: { jobId, spec: bytes, rank: 0, shards: 1 } })
  })
}

test('an invitation whose spec names a command is refused, charged, and starts nothing', async () => {
  const r = await rig()
  const reply = await invite(r, { model: { kind: 'external', command: ['sh', '-c', 'id > /tmp/pwned'] } })
  assert.is(reply.accepted, false)
  assert.match(reply.reason, /may not name a command or socket/)
  assert.equal(r.charged, [{ peer: r.inviter.self, code: 'TRAINING_SPEC_NAMES_PROGRAM' }])
  assert.is(r.service.workers.size, 0)
  const sock = await invite(r, { model: { kind: 'external', socket: '/var/run/docker.sock' } })
  assert.match(sock.reason, /may not name a command or socket/)
  assert.is(r.charged.length, 2)
  await r.service.stop()
})

test('a spec that breaks the schema is refused and charged', async () => {
  const r = await rig()
  const big = await invite(r, { model: { kind: 'mlp', hidden: 1_260_000 } })
  assert.is(big.accepted, false)
  assert.match(big.reason, /training\.model\.hidden/)
  const junk = await invite(r, '{not json')
  assert.match(junk.reason, /not valid JSON/)
  assert.equal(r.charged.map(c => c.code), ['TRAINING_SPEC_INVALID', 'TRAINING_SPEC_INVALID'])
  await r.service.stop()
})

test('an unknown trainer is refused with the names this node offers, without a charge', async () => {
  const r = await rig()
  const reply = await invite(r, { model: { kind: 'external', trainer: 'x' } })
  assert.is(reply.accepted, false)
  assert.is(reply.reason, "unknown trainer 'x' (this node offers: broken, huge, torch-mnist)")
  assert.equal(r.charged, [])
  await r.service.stop()
})

test('a trainer that can not start, or whose model is too large, is a refusal with its reason', async () => {
  const r = await rig()
  const broken = await invite(r, { model: { kind: 'external', trainer: 'broken' } })
  assert.is(broken.accepted, false)
  assert.match(broken.reason, /trainer 'broken' cannot start: .*missing-python is not an executable file/)
  const huge = await invite(r, { model: { kind: 'external', trainer: 'huge' } })
  assert.is(huge.accepted, false)
  assert.match(huge.reason, /1000000000 parameters, this node allows at most 10000000/)
  assert.equal(r.charged, [])
  assert.is(r.service.workers.size, 0)
  await r.service.stop()
})

test('built-in work per round, per evaluation and to build is bounded (it runs on the node\'s event loop), without a charge', async () => {
  const r = await rig()
  // the reviewer's spec: 1.56 s per round on the loop when the 784-wide input layer was not counted
  const round = await invite(r, { model: { kind: 'mlp', hidden: 4096 }, localSteps: 1, batchSize: 1024 })
  assert.is(round.accepted, false)
  assert.match(round.reason, /event loop: one round is 9990832128 multiply-adds \(3 × \(784 \+ 10\) × hidden 4096 × batchSize 1024 × localSteps 1\), above this node's 268435456; lower hidden, batchSize or localSteps/)
  // a cheap round, but the test-set evaluation was not counted at all
  const evaluation = await invite(r, { model: { kind: 'mlp', hidden: 4096 }, localSteps: 1, batchSize: 1 })
  assert.is(evaluation.accepted, false)
  assert.match(evaluation.reason, /one evaluation is 6504448000 multiply-adds \(10 × testPerClass 200 × \(784 \+ 10\) × hidden 4096\), above this node's 268435456/)
  assert.equal(r.charged, [])
  assert.is(r.service.workers.size, 0)
  await r.service.stop()
  // cheap rounds and evaluation, but the parameters to build: a node with a smaller build budget refuses it
  const small = await rig({ builtinWorkBudget: { build: 2 ** 20 } })
  const build = await invite(small, { model: { kind: 'mlp', hidden: 256 }, dataset: { trainPerClass: 10, testPerClass: 10 } })
  assert.is(build.accepted, false)
  assert.is(build.reason, `the built-in trainer runs on this node's event loop: building the model and data is ${8 * 203530 + 30 * 7840} units (8 per parameter + the data), above this node's 1048576; lower hidden or dataset.trainPerClass`)
  assert.equal(small.charged, [])
  await small.service.stop()
})

test('the built-in work is counted in real multiply-adds, and the default spec fits with headroom', () => {
  const def = parseTrainingSpec({})
  assert.equal(builtinWorkOf(def), { build: 8 * 50890 + 1400 * 7840, round: 3 * 50816 * 32 * 10, evaluation: 2000 * 50816 })
  const w = builtinWorkOf(def)
  assert.ok(w.round * 4 < BUILTIN_WORK_BUDGET.round && w.evaluation * 2 < BUILTIN_WORK_BUDGET.evaluation && w.build * 2 < BUILTIN_WORK_BUDGET.build, JSON.stringify(w))
  assert.is(builtinRefusal(def), undefined)
  // the largest model (hidden 4096) still fits with a small test set and batch
  assert.is(builtinRefusal(parseTrainingSpec({ model: { kind: 'mlp', hidden: 4096 }, batchSize: 4, localSteps: 2, dataset: { trainPerClass: 50, testPerClass: 5 } })), undefined)
})

test('the default built-in spec is accepted; a second built-in job from the same coordinator is refused, another coordinator\'s is not', async () => {
  const r = await rig()
  const first = await invite(r, {}, 'builtin-1')
  assert.is(first.accepted, true, first.reason)
  assert.is(first.paramCount, 784 * 64 + 64 + 640 + 10)
  const second = await invite(r, { rounds: 1 }, 'builtin-2')
  assert.is(second.accepted, false)
  assert.is(second.reason, 'busy: this node already runs a built-in training job for you (one at a time per coordinator)')
  const other = await loopTransport()
  other.peer = r.provider
  r.provider.others.push(other)
  const third = await invite(r, { rounds: 1 }, 'builtin-3', other)
  assert.is(third.accepted, true, third.reason)
  assert.is(r.service.workers.size, 2)
  assert.equal(r.charged, [])
  // once the first job ends its coordinator may start another
  await r.service.workers.get('builtin-1')?.stop()
  const again = await invite(r, { rounds: 1 }, 'builtin-4')
  assert.is(again.accepted, true, again.reason)
  await r.service.stop()
})

test('an invitation read right behind the Finish of the same coordinator\'s last job is not refused as busy', async () => {
  const r = await rig()
  const first = await invite(r, {}, 'builtin-a')
  assert.is(first.accepted, true, first.reason)
  // a busy member reads the Finish and the coordinator's next invitation in one go (same stream, in order)
  const bytes = encodeTrainingMessage({ finish: { jobId: 'builtin-a', round: 0, sendModel: false } })
  r.provider.deliver(r.inviter.self, decodeTrainingMessage(bytes instanceof Uint8Array ? bytes : bytes.subarray()))
  const next = await invite(r, { rounds: 1 }, 'builtin-b')
  assert.is(next.accepted, true, next.reason)
  assert.equal([...r.service.workers.keys()], ['builtin-b'])
  await r.service.stop()
})

test('a declared trainer is accepted, and stopping the service closes it', async () => {
  const r = await rig()
  const reply = await invite(r, { model: { kind: 'external', trainer: 'torch-mnist' } }, 'job-ok')
  assert.is(reply.accepted, true, reply.reason)
  assert.is(reply.paramCount, 784 * 64 + 64 + 640 + 10)
  assert.is(r.service.workers.size, 1)
  await r.service.stop()
  assert.is(r.service.workers.size, 0)
})

test('the submitter\'s session fails with every provider\'s refusal reason', async () => {
  const r = await rig()
  const session = new TrainingSession({ transport: r.inviter, peers: [r.provider.self], spec: { model: { kind: 'external', trainer: 'tensorflow' }, rounds: 1 }, inviteTimeoutMs: 20_000 })
  try {
    await session.run()
    assert.unreachable()
  } catch (err) {
    assert.is((err as any).code, 'INVITES_REFUSED')
    assert.match((err as Error).message, new RegExp(`^all invited peers refused: ${r.provider.self.slice(0, 16)}…: unknown trainer 'tensorflow' \\(this node offers: broken, huge, torch-mnist\\)$`))
  }
  assert.equal(session.refusals, [{ peer: r.provider.self, reason: "unknown trainer 'tensorflow' (this node offers: broken, huge, torch-mnist)" }])
  await r.service.stop()
})

test('a refusal reason from a stranger is cleaned before anyone sees it', async () => {
  const inviter = await loopTransport()
  const liar = await loopTransport()
  inviter.peer = liar
  liar.peer = inviter
  liar.listen((from, msg) => {
    if (msg.invite != null) liar.send(from, { inviteReply: { jobId: msg.invite.jobId, accepted: false, reason: '\x1b[2J\x1b[31mevil\nsecond line' + 'x'.repeat(1000) } })
  })
  const session = new TrainingSession({ transport: inviter, peers: [liar.self], spec: { rounds: 1 } })
  await session.run().catch(() => {})
  const reason = session.refusals[0].reason
  assert.not.match(reason, /[\x00-\x1f]/)
  assert.ok(reason.length <= 301, `reason of ${reason.length} chars`)
})

test('no uncaught exception or unhandled rejection happened', async () => {
  await new Promise(resolve => setTimeout(resolve, 200))
  assert.equal(uncaught.map(e => e.message), [])
  rmSync(root, { recursive: true, force: true })
})

// helper user16's walk: a provider's operator found no line in `dbc node logs` for the training jobs
// it joined, refused or left (each grid task has one); the service now reports each to the daemon's log
test('each membership joined, refused and left is reported (the daemon logs it)', async () => {
  const events: MembershipEvent[] = []
  const r = await rig({ onMembership: e => { events.push(e) } })
  const ok = await invite(r, {}, 'member-log-1')
  assert.is(ok.accepted, true, ok.reason)
  const unknown = await invite(r, { model: { kind: 'external', trainer: 'x' } }, 'member-log-2')
  assert.is(unknown.accepted, false)
  await r.service.workers.get('member-log-1')?.stop()
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(events, [
    { kind: 'joined', jobId: 'member-log-1', coordinator: r.inviter.self, trainer: 'built-in', fromRound: 0 },
    { kind: 'refused', jobId: 'member-log-2', coordinator: r.inviter.self, code: '', reason: "unknown trainer 'x' (this node offers: broken, huge, torch-mnist)" },
    { kind: 'left', jobId: 'member-log-1', coordinator: r.inviter.self, rounds: 0, refusedRounds: 0 }
  ])
  await r.service.stop()
})

test.run()
