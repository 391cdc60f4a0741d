// Well-formed but hostile messages, one identity per case, so each outcome is seen on its own:
// what the node answered, whether it hung up, and (checked by the caller against the node's
// status) whether it charged the sender. The random fuzzer mixes the same cases into its stream.
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { FramedStream } from '../../src/net/framed.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { ALLREDUCE_PROTOCOL, decodeTrainingMessage } from '../../src/training/transport.js'
import { createRng } from '../../src/core/rng.js'
import { newIdentity, type FuzzTarget } from './live-fuzzer.js'
import { fuzzTargetFor, type HostileCase } from './targets.js'

/** Protocols whose answers travel on a stream the node opens to us, not on ours. */
const NO_ANSWER_ON_STREAM = new Set(['/dbc/membership/1.0.0', ALLREDUCE_PROTOCOL])

export interface HostileOutcome {
  protocol: string
  name: string
  expect: string
  charge: HostileCase['charge']
  /** What the answer must match, if anything. */
  replyPattern?: RegExp
  peerId: string
  /** What the node sent back (first frame on the stream, or a training reply on its own stream). */
  reply: string
  disconnected: boolean
  /** The stream could not be opened (protocol refused, or we were refused at the door). */
  refused: boolean
}

function describeReply (protocol: string, frame: Uint8Array): string {
  const err = (): string | undefined => {
    try {
      const e = dbc.common.v1.ProtocolError.decode(frame)
      return e.code !== '' ? `ProtocolError ${e.code}: ${e.message}` : undefined
    } catch { return undefined }
  }
  try {
    if (protocol === '/dbc/task/1.0.0') {
      const m = dbc.task.v1.TaskMessage.decode(frame)
      if (m.heartbeat != null) return 'heartbeat: the lease was opened'
      if (m.result != null) return `result ok=${String(m.result.ok)} ${m.result.error}`
      if (m.offer != null) return `offer${m.offer.refusal !== '' ? ' refused: ' + m.offer.refusal : ''}`
    }
    if (protocol === '/dbc/echo/1.0.0') { const e = err(); if (e !== undefined) return e; return `echoed ${dbc.common.v1.Echo.decode(frame).payload.length} bytes` }
    if (protocol === '/dbc/capability/1.0.0') { const e = err(); if (e !== undefined) return e; return `${dbc.capability.v1.CapabilityLookupResponse.decode(frame).records.length} records` }
    if (protocol === '/dbc/vivaldi/1.0.0') { const e = err(); if (e !== undefined) return e; return `probe answered (${dbc.membership.v1.VivaldiProbe.decode(frame).coordinate.length} values)` }
  } catch {}
  return err() ?? `${frame.length} bytes`
}

/** The payout address in the node's answer to a plain lease request (an offer or a refusal), if it names one. */
async function payoutOf (addr: ReturnType<typeof multiaddr>): Promise<string | undefined> {
  const id = await newIdentity()
  try {
    const stream = await id.host.dialProtocol(addr, '/dbc/task/1.0.0', { signal: AbortSignal.timeout(5000) })
    const framed = new FramedStream(stream, { maxFrameBytes: 64 * 1024 })
    await framed.write(dbc.task.v1.TaskMessage.encode({ leaseRequest: { jobId: new Uint8Array(16).fill(7), requester: id.peerBytes, executor: 'wasm', slots: 1 } }).finish(), { signal: AbortSignal.timeout(5000) })
    const frame = await framed.read({ signal: AbortSignal.timeout(5000) })
    await framed.close({ signal: AbortSignal.timeout(2000) }).catch(() => {})
    const payout = frame === undefined ? '' : dbc.task.v1.TaskMessage.decode(frame).offer?.payoutAddress ?? ''
    return payout === '' ? undefined : payout
  } catch {
    return undefined
  } finally {
    await Promise.resolve(id.host.stop()).catch(() => {})
  }
}

/** Sends every hostile case of every given protocol from its own fresh identity. */
export async function runHostileProbes (opts: { target: FuzzTarget, protocols: string[], markerDir?: string, seed?: number }): Promise<HostileOutcome[]> {
  const rng = createRng(opts.seed ?? 99)
  const addr = multiaddr(opts.target.addr)
  const targetBytes = peerIdFromString(opts.target.peerId).toMultihash().bytes
  // the node's payout address (its offers carry it, refusals too): vouchers for it reach the chain checks
  const payout = opts.protocols.includes('/dbc/task/1.0.0') ? await payoutOf(addr) : undefined
  const out: HostileOutcome[] = []
  for (const protocol of opts.protocols) {
    const spec = fuzzTargetFor(protocol)
    if (spec?.owner !== 'dbc') continue
    for (const h of spec.hostile) {
      const id = await newIdentity()
      // training replies (an invite's answer) come back on a stream the node opens to us
      const training: string[] = []
      await id.host.handle(ALLREDUCE_PROTOCOL, (stream) => {
        const framed = new FramedStream(stream, { maxFrameBytes: 1 << 20 })
        void (async () => {
          for (let f = await framed.read(); f !== undefined; f = await framed.read()) {
            const m = decodeTrainingMessage(f)
            if (m.inviteReply != null) training.push(m.inviteReply.accepted ? 'invite accepted' : `invite refused: ${m.inviteReply.reason}`)
          }
        })().catch(() => {})
      })
      const o: HostileOutcome = { protocol, name: h.name, expect: h.expect, charge: h.charge, replyPattern: h.reply, peerId: id.peerId, reply: '', disconnected: false, refused: false }
      try {
        let stream
        try {
          stream = await id.host.dialProtocol(addr, protocol, { signal: AbortSignal.timeout(5000) })
        } catch (err) {
          o.refused = true
          o.reply = `stream refused: ${(err as Error).message}`
          continue
        }
        const framed = new FramedStream(stream, { maxFrameBytes: spec.maxFrame + 64 })
        try {
          for (const body of h.craft({ rng, id, target: { peerBytes: targetBytes, payout }, now: Date.now(), markerDir: opts.markerDir })) {
            await framed.write(body, { signal: AbortSignal.timeout(10_000) }) // write() frames it
          }
          if (!NO_ANSWER_ON_STREAM.has(protocol)) {
            const first = await framed.read({ signal: AbortSignal.timeout(5000) }).catch((err: Error) => { o.reply = `no answer (${err.name})`; return undefined })
            if (first !== undefined) o.reply = describeReply(protocol, first)
            else if (o.reply === '') o.reply = 'stream closed without an answer'
          } else {
            o.reply = 'no answer expected on the stream'
          }
        } catch (err) {
          o.reply = `stream failed: ${(err as Error).message}`
        } finally {
          await framed.close({ signal: AbortSignal.timeout(2000) }).catch(() => { framed.abort(new Error('probe done')) })
        }
        if (protocol === ALLREDUCE_PROTOCOL && h.name.startsWith('invite')) {
          for (let i = 0; i < 100 && training.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 50))
          o.reply = training[0] ?? 'no invite reply within 5 s'
        }
        // give the node a moment to hang up on us, if it is going to
        await new Promise(resolve => setTimeout(resolve, 100))
        o.disconnected = id.disconnected
      } finally {
        out.push(o)
        await Promise.resolve(id.host.stop()).catch(() => {})
      }
    }
  }
  return out
}
