// bench net: our framing (FramedStream + protobuf Echo) against a raw libp2p stream, in the
// same process over TCP on 127.0.0.1: round trip of a 100-byte message, and one-way
// throughput of 64 KiB chunks.
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { createHost, type Host } from '../src/net/host.js'
import { registerEcho, EchoClient } from '../src/net/echo.js'
import { FramedStream } from '../src/net/framed.js'
import { metric, summarize, type BenchModule } from './lib.js'

const RAW_ECHO = '/bench/raw-echo/1.0.0'
const RAW_SINK = '/bench/raw-sink/1.0.0'
const FRAMED_SINK = '/bench/framed-sink/1.0.0'

async function pair (): Promise<[Host, Host]> {
  const mk = async (): Promise<Host> => await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false })
  return [await mk(), await mk()]
}

function rawRoundTrip (stream: Stream, payload: Uint8Array): Promise<void> {
  return new Promise(resolve => {
    let got = 0
    const onMsg = (evt: { data: { byteLength: number } }): void => {
      got += evt.data.byteLength
      if (got >= payload.byteLength) {
        stream.removeEventListener('message', onMsg as any)
        resolve()
      }
    }
    stream.addEventListener('message', onMsg as any)
    stream.send(payload)
  })
}

let sinkDone: ((bytes: number) => void) | undefined
let sinkTarget = 0

export const run: BenchModule['run'] = async ({ quick }) => {
  const [server, client] = await pair()
  try {
    await registerEcho(server)
    await server.handle(RAW_ECHO, (stream) => {
      stream.addEventListener('message', (evt) => { stream.send(evt.data) })
    })
    await server.handle(RAW_SINK, (stream) => {
      let n = 0
      stream.addEventListener('message', (evt) => {
        n += evt.data.byteLength
        if (n >= sinkTarget) sinkDone?.(n)
      })
    })
    await server.handle(FRAMED_SINK, async (stream) => {
      const framed = new FramedStream(stream, { maxFrameBytes: 1024 * 1024, highWaterFrames: 256 })
      let n = 0
      for (;;) {
        const f = await framed.read()
        if (f === undefined) break
        n += f.byteLength
        if (n >= sinkTarget) sinkDone?.(n)
      }
    })
    const addr = server.getMultiaddrs()[0]
    await client.dial(addr)
    const peer = server.peerId

    // --- round trip, 100-byte message, alternating so both see the same machine noise
    const n = quick ? 500 : 3000
    const payload = new Uint8Array(100).fill(7)
    const raw = await client.dialProtocol(peer, RAW_ECHO)
    const echo = await EchoClient.open(client, peer)
    for (let i = 0; i < 200; i++) { await rawRoundTrip(raw, payload); await echo.roundTrip(payload) } // warm up
    const rawRtt: number[] = []; const ourRtt: number[] = []
    for (let i = 0; i < n; i++) {
      let t = performance.now(); await rawRoundTrip(raw, payload); rawRtt.push(performance.now() - t)
      t = performance.now(); await echo.roundTrip(payload); ourRtt.push(performance.now() - t)
    }
    const r = summarize(rawRtt); const o = summarize(ourRtt)

    // --- one-way throughput of 64 KiB chunks
    const chunk = new Uint8Array(64 * 1024).fill(1)
    const total = (quick ? 32 : 128) * 1024 * 1024
    const chunks = total / chunk.byteLength
    const measure = async (proto: string, framed: boolean): Promise<number> => {
      const s = await client.dialProtocol(peer, proto)
      const f = framed ? new FramedStream(s) : undefined
      sinkTarget = total
      const done = new Promise<number>(resolve => { sinkDone = resolve })
      const t0 = performance.now()
      for (let i = 0; i < chunks; i++) {
        if (f !== undefined) await f.write(chunk)
        else if (!s.send(chunk)) await s.onDrain()
      }
      await done
      const secs = (performance.now() - t0) / 1000
      await s.close()
      return total / secs / 1e6
    }
    await measure(RAW_SINK, false) // warm up
    // alternate raw and framed runs so both see the same machine noise; report medians
    const rawRuns: number[] = []; const ourRuns: number[] = []
    for (let i = 0; i < (quick ? 3 : 5); i++) {
      rawRuns.push(await measure(RAW_SINK, false))
      ourRuns.push(await measure(FRAMED_SINK, true))
    }
    const rawMBs = summarize(rawRuns).p50
    const ourMBs = summarize(ourRuns).p50

    return {
      metrics: {
        rtt_p50_ms: metric(o.p50, 'ms', r.p50, '<= 1.3x raw', o.p50 <= 1.3 * r.p50),
        rtt_p99_ms: metric(o.p99, 'ms', r.p99),
        rtt_mean_ms: metric(o.mean, 'ms', r.mean),
        throughput_64k_MBps: metric(ourMBs, 'MB/s', rawMBs, '>= 0.8x raw', ourMBs >= 0.8 * rawMBs)
      },
      series: { rtt_ms: { ours: ourRtt.slice(0, 2000), raw: rawRtt.slice(0, 2000) }, throughput_MBps: { ours: ourRuns, raw: rawRuns } },
      notes: [`${n} round trips of 100 B (raw and framed alternated), ${total / 2 ** 20} MiB one-way in 64 KiB chunks (median of alternated runs), TCP on 127.0.0.1, noise + yamux, one process`]
    }
  } finally {
    await Promise.all([server.stop(), client.stop()])
  }
}
