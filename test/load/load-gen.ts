// Load generator: several sender peers (libp2p hosts in this process) push sealed task messages
// at one node through the overlay's EnvelopeService, direct path (k = 1), open loop at a fixed
// total rate. Each message is acked by the node (the ack is what "delivered" means); latency is
// send() → ack. A baseline pushes raw echo frames at the same rate over the same kind of
// connections (pipelined on one stream per sender), so the envelope layer's own cost shows.
//
// Why envelopes and not /dbc/task/1.0.0: the task protocol opens one stream per task and runs
// the task (a wasm call, receipts) before answering, so its rate is the executor's (bench/grid);
// the sealed-message service is the per-message hot path every node runs for every peer (it is
// what relays, multi-path delivery and replay protection sit on).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { createHost, type Host } from '../../src/net/host.js'
import { EnvelopeService } from '../../src/net/overlay/envelopes.js'
import { ECHO_PROTOCOL, ECHO_MAX_FRAME } from '../../src/net/echo.js'
import { FramedStream } from '../../src/net/framed.js'
import { dbc } from '../../src/wire/gen/wire.js'

export interface LoadTarget { peerId: string, addr: string }

export interface LoadOptions {
  target: LoadTarget
  /** Messages per second, all senders together. */
  rate: number
  seconds: number
  senders?: number
  payloadBytes?: number
  /** How long to wait for the last acks after the sending period (ms). */
  drainMs?: number
  kind?: 'envelope' | 'echo'
}

export interface LoadReport {
  kind: 'envelope' | 'echo'
  rate: number
  seconds: number
  senders: number
  sent: number
  delivered: number
  failed: number
  /** Messages sent but neither acked nor failed by the end of the drain period. */
  outstanding: number
  /** Achieved send rate (the generator itself may fall behind on a loaded machine). */
  achievedRate: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  errors: string[]
}

interface Sender { host: Host, send: (payload: Uint8Array) => Promise<void>, close: () => Promise<void> }

async function envelopeSender (target: LoadTarget): Promise<Sender> {
  const key = await generateKeyPair('Ed25519')
  const host = await createHost({ privateKey: key, listen: [], connectionMonitor: false, dhtServer: false })
  const svc = new EnvelopeService(host as any, { secretKey: key.raw, relayCandidates: () => [], k: 1, ackTimeoutMs: 2000, maxAttempts: 4 })
  await svc.start()
  await host.dial(multiaddr(target.addr))
  const to = peerIdFromString(target.peerId)
  return {
    host,
    send: async payload => { await svc.send(to, payload, { k: 1 }) },
    close: async () => { await svc.stop(); await Promise.resolve(host.stop()) }
  }
}

async function echoSender (target: LoadTarget): Promise<Sender> {
  const key = await generateKeyPair('Ed25519')
  const host = await createHost({ privateKey: key, listen: [], connectionMonitor: false, dhtServer: false })
  const stream = await host.dialProtocol(multiaddr(target.addr), ECHO_PROTOCOL)
  const framed = new FramedStream(stream, { maxFrameBytes: ECHO_MAX_FRAME, highWaterFrames: 4096 })
  // the echo server answers in order: match replies FIFO
  const waiting: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  void (async () => {
    try {
      for (;;) {
        const f = await framed.read()
        if (f === undefined) break
        waiting.shift()?.resolve()
      }
    } catch (err) {
      for (const w of waiting.splice(0)) w.reject(err as Error)
    }
  })()
  return {
    host,
    send: async payload => {
      const done = new Promise<void>((resolve, reject) => { waiting.push({ resolve, reject }) })
      await framed.write(dbc.common.v1.Echo.encode({ payload }).finish())
      await done
    },
    close: async () => { await framed.close().catch(() => {}); await Promise.resolve(host.stop()) }
  }
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

export async function runLoad (opts: LoadOptions): Promise<LoadReport> {
  const kind = opts.kind ?? 'envelope'
  const nSenders = opts.senders ?? 4
  const senders = await Promise.all(Array.from({ length: nSenders }, async () => await (kind === 'envelope' ? envelopeSender(opts.target) : echoSender(opts.target))))
  const latencies: number[] = []
  const errors = new Map<string, number>()
  let sent = 0; let delivered = 0; let failed = 0
  const payload = new Uint8Array(opts.payloadBytes ?? 256)
  const pending = new Set<Promise<void>>()
  try {
    const started = performance.now()
    const total = Math.round(opts.rate * opts.seconds)
    // open loop: every tick, send what the schedule says is due by now
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * opts.rate))
      while (sent < due) {
        const s = senders[sent % nSenders]
        const t0 = performance.now()
        sent++
        const p = s.send(payload).then(() => { delivered++; latencies.push(performance.now() - t0) }, (err: Error) => {
          failed++
          // the reason, not the message id: failures group by why they failed
          const reason = (err as { data?: { reason?: unknown } }).data?.reason
          const k = typeof reason === 'string' ? `${(err as { code?: string }).code ?? 'ERROR'}: ${reason}` : err.message.slice(0, 80)
          errors.set(k, (errors.get(k) ?? 0) + 1)
        })
        pending.add(p)
        void p.finally(() => pending.delete(p))
      }
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    const sendSeconds = (performance.now() - started) / 1000
    const drainEnd = Date.now() + (opts.drainMs ?? 15_000)
    while (pending.size > 0 && Date.now() < drainEnd) await new Promise(resolve => setTimeout(resolve, 20))
    latencies.sort((a, b) => a - b)
    return {
      kind,
      rate: opts.rate,
      seconds: opts.seconds,
      senders: nSenders,
      sent,
      delivered,
      failed,
      outstanding: pending.size,
      achievedRate: sent / sendSeconds,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      maxMs: latencies.length > 0 ? latencies[latencies.length - 1] : 0,
      errors: [...errors].map(([k, n]) => `${n}x ${k}`)
    }
  } finally {
    await Promise.all(senders.map(async s => { await s.close().catch(() => {}) }))
  }
}
