// A rig for the outbound read budget's integration tests (src/net/guard/outbound.ts): a submitter
// host with a guard and a Libp2pJobTransport, hostile providers as raw handlers on /dbc/task/1.0.0
// (lease -> heartbeat -> read the task -> answer as told, never close), and one lease + task per
// provider. Real libp2p hosts on 127.0.0.1.
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { Libp2pJobTransport, TASK_PROTOCOL } from '../../src/net/tasks.js'
import { FramedStream } from '../../src/net/framed.js'
import { createInboundGuard, installGuard, type InboundGuard, type InboundGuardInit } from '../../src/net/guard/index.js'
import type { FakeProvider } from '../../src/jobs/fake-provider.js'
import { signLease } from '../../src/core/scheduler/index.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import { dbc } from '../../src/wire/gen/wire.js'

export const MiB = 1024 * 1024
const TM = dbc.task.v1.TaskMessage
export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
/** The submitter's key: a test that makes its own submitter host (`rig`'s `submitter`) makes it from this. */
export const submitterSecret = new Uint8Array(randomBytes(32))
const jobId = new Uint8Array(randomBytes(32))

export async function tcpHost (seed: number): Promise<Host> {
  return await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seed)), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
}

/** A provider that accepts a lease (one heartbeat), reads the task, then calls `answer` (which writes on the raw stream) and never closes. */
export async function hostile (seed: number, answer: (s: Stream) => void): Promise<Host> {
  const host = await tcpHost(seed)
  await host.handle(TASK_PROTOCOL, async (stream: Stream) => {
    const f = new FramedStream(stream)
    await f.readRequired()
    await f.write(TM.encode({ heartbeat: {} }).finish())
    await f.readRequired() // the task
    answer(stream)
  }, { runOnLimitedConnection: true })
  return host
}

export interface Rig { submitter: Host, guard: InboundGuard, tr: Libp2pJobTransport, charges: Array<{ peer: string, code: string }>, stop: () => Promise<void> }

export async function rig (init: InboundGuardInit, host?: Host): Promise<Rig> {
  const submitter = host ?? await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', submitterSecret), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const charges: Array<{ peer: string, code: string }> = []
  const guard = createInboundGuard({ identityGate: false, sweepMs: 100, charge: (p, e) => { charges.push({ peer: p.toString(), code: e.code }) }, ...init })
  installGuard(submitter, guard)
  const tr = new Libp2pJobTransport({ host: submitter, offerTimeoutMs: 15_000 })
  return { submitter, guard, tr, charges, stop: async () => { tr.close(); guard.stop(); await submitter.stop() } }
}

/** Opens a lease with `p` and sends it one task; `outcome` resolves with the result's code or why the copy was lost. */
export async function leaseAndRun (r: Rig, p: Host, n: number, signal: AbortSignal, fp?: FakeProvider): Promise<{ leaseId: Uint8Array, outcome: Promise<string> }> {
  if (r.submitter.getConnections(p.peerId).length === 0) await r.submitter.dial(p.getMultiaddrs()[0])
  const me = r.submitter.peerId.toMultihash().bytes
  const offerId = fp?.offer({ jobId, requester: me, slots: 1, executor: 'wasm' }, me).offerId ?? new Uint8Array(8)
  const l = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId, jobId, holder: me, provider: p.peerId.toMultihash().bytes, expiresAt: Date.now() + 600_000, heartbeatMs: 100 })
  const id = p.peerId.toString()
  await r.tr.openLease(id, l, { signal: AbortSignal.timeout(15_000) })
  const outcome = r.tr.runTask(id, { taskId: new Uint8Array([n]), jobId, leaseId: l.leaseId, index: n, attempt: 1, executor: 'wasm', input: new Uint8Array([16]) }, { signal })
    .then(res => res.ok === true ? `ok ${res.output?.length ?? 0}` : `failed ${String(res.code)}`, (err: Error) => `lost: ${err.message}`)
  return { leaseId: l.leaseId as Uint8Array, outcome }
}
