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
import { TrainingService } from '../../../src/training/service.js'
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
  readonly sent: Array<{ to: string, msg: TrainingMessage }> = []
  override async start (): Promise<void> {}
  override async stop (): Promise<void> {}
  override send (to: string, msg: TrainingMessageInput): void {
    const bytes = encodeTrainingMessage(msg)
    const decoded = decodeTrainingMessage(bytes instanceof Uint8Array ? bytes : bytes.subarray())
    this.sent.push({ to, msg: decoded })
    const target = this.peer
    if (target !== undefined && target.self === to) queueMicrotask(() => { target.deliver(this.self, decoded) })
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

async function rig (): Promise<Rig> {
  const inviter = await loopTransport()
  const provider = await loopTransport()
  inviter.peer = provider
  provider.peer = inviter
  const charged: Array<{ peer: string, code: string }> = []
  const service = new TrainingService(provider, { trainers, onBadInput: (peer: PeerId, err: WireError) => { charged.push({ peer: peer.toString(), code: err.code }) } })
  await service.start()
  return { inviter, provider, service, charged }
}

/** Sends an invitation with raw spec JSON and waits for the reply. */
async function invite (r: Rig, spec: unknown, jobId = Math.random().toString(16).slice(2)): Promise<{ accepted: boolean, reason: string, paramCount: number }> {
  const bytes = typeof spec === 'string' ? new TextEncoder().encode(spec) : new TextEncoder().encode(JSON.stringify(spec))
  return await new Promise(resolve => {
    const off = r.inviter.listen((_from, msg) => {
      if (msg.inviteReply?.jobId !== jobId) return
      off()
      resolve({ accepted: msg.inviteReply.accepted, reason: msg.inviteReply.reason, paramCount: msg.inviteReply.paramCount })
    })
    r.inviter.send(r.provider.self, { invite: { jobId, spec: bytes, rank: 0, shards: 1 } })
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

test('built-in work per round is bounded (it runs on the node\'s event loop)', async () => {
  const r = await rig()
  const reply = await invite(r, { model: { kind: 'mlp', hidden: 4096 }, localSteps: 10_000, batchSize: 4096 })
  assert.is(reply.accepted, false)
  assert.match(reply.reason, /exceeds 4194304 per round/)
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

test.run()
