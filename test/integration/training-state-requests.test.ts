// A job member that sends StateRequests again and again gets one copy of the state per round, not one
// per request (review s11 H1: 1,000 requests of ~20 bytes made a donor queue 776 MiB for a 0.8 MB model).
// Real libp2p hosts on 127.0.0.1: a coordinator, an honest member `a`, and a raw hostile member `h` that
// accepts the invitation, reads nothing `a` sends, and sends `a` N StateRequests.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { TrainingService } from '../../src/training/service.js'
import { TrainingTransport, ALLREDUCE_PROTOCOL } from '../../src/training/transport.js'
import { FramedStream } from '../../src/net/framed.js'
import { TrainingSession } from '../../src/training/session.js'
import { encodeTrainingMessage, decodeTrainingMessage } from '../../src/training/messages.js'
import type { TrainingSpecInput } from '../../src/training/spec.js'

const SPEC: TrainingSpecInput = { model: { kind: 'mlp', hidden: 256 }, dataset: { trainPerClass: 20, testPerClass: 10 }, localSteps: 1, batchSize: 16, evalEvery: 0, rounds: 3, deadline: { initialMs: 20_000 } }
const N = 300

test('a member asking for the state 300 times in a round gets it once; the queue holds at most one state for it', async () => {
  const made = await Promise.all([0, 1, 2].map(async () => await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })))
  const [coord, a, h] = made
  for (let i = 0; i < 3; i++) for (let j = i + 1; j < 3; j++) await made[i].dial(made[j].getMultiaddrs()[0])
  await new Promise(resolve => setTimeout(resolve, 300))
  const sa = new TrainingService(a); await sa.start()
  let served = 0 // the states `a` hands `h`
  const send = sa.transport.send.bind(sa.transport)
  sa.transport.send = (to, msg, ...rest) => { if (to === h.peerId.toString() && msg.stateResponse != null) served++; send(to, msg, ...rest) }
  let sent = false
  const toPeer = async (peer: Host, msgs: any[]): Promise<void> => {
    const s = await h.dialProtocol(peer.peerId, ALLREDUCE_PROTOCOL)
    const f = new FramedStream(s, { maxFrameBytes: 1 << 20 })
    for (const m of msgs) await f.write(encodeTrainingMessage(m))
  }
  await h.handle(ALLREDUCE_PROTOCOL, (stream: any, connection: any) => {
    if (!connection.remotePeer.equals(coord.peerId)) return // never read what a member sends (a slow reader)
    const f = new FramedStream(stream, { maxFrameBytes: 16 << 20 })
    void (async () => {
      for (;;) {
        let frame: Uint8Array | undefined
        try { frame = await f.read() } catch { return }
        if (frame === undefined) return
        const m = decodeTrainingMessage(frame instanceof Uint8Array ? frame : (frame as any).subarray())
        if (m.invite != null) await toPeer(coord, [{ inviteReply: { jobId: m.invite.jobId, accepted: true, reason: '', paramCount: 0, code: '' } }])
        if (m.roundStart != null && !sent) {
          sent = true
          await new Promise(resolve => setTimeout(resolve, 500)) // a's worker has seen the RoundStart (lastMembers)
          await toPeer(a, Array.from({ length: N }, () => ({ stateRequest: { jobId: m.roundStart!.jobId } })))
        }
      }
    })()
  }, { runOnLimitedConnection: true })
  const tc = new TrainingTransport(coord); await tc.start()
  const session = new TrainingSession({ transport: tc, peers: [a.peerId.toString(), h.peerId.toString()], spec: { ...SPEC, minPeers: 1 } })
  const run = session.run().catch((e: Error) => e)
  let qpeak = 0
  for (let i = 0; i < 300; i++) {
    await new Promise(resolve => setTimeout(resolve, 10))
    const ob = (sa as any).transport?.outboxes?.get(h.peerId.toString())
    qpeak = Math.max(qpeak, ob?.queue.reduce((t: number, q: any) => t + q.bytes.byteLength, 0) ?? 0)
  }
  const worker = sa.workers.get(session.jobId)
  const state = (worker as any)?.reference?.length * 4
  const bytesOut: number = (sa as any).transport?.stats.bytesSent
  console.log(`N=${N} requests, state ${state} B: ${served} answered; a's queue to h peaked at ${(qpeak / 2 ** 20).toFixed(2)} MiB; a sent ${(bytesOut / 2 ** 20).toFixed(2)} MiB in all`)
  assert.ok(state > 100_000, `state ${state}`)
  assert.ok(served >= 1 && served <= 2, `${served} states handed to h for ${N} requests`)
  assert.ok(qpeak <= 2 * state + 65536, `queued ${qpeak} bytes for h, a state is ${state}`)
  await sa.stop(); await tc.stop()
  for (const x of made) await x.stop()
  void run
})
test.run()
