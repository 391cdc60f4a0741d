// Fuzz of WebRTC signalling (/webrtc-signaling/0.0.1) on a daemon behind NAT with WebRTC on, as
// `dbc node start --behind-nat` builds it: throw-away identities send the live fuzzer's generic
// cases (random bytes, garbage, truncated and oversized frames) and the crafted hostile
// signalling of test/fuzz/webrtc-signaling-target.ts (bad offers, mutated SDP, hostile ICE
// candidates, a 4 MiB offer) at the library's real handler, through the node's admission bound
// (src/core/routing/webrtc-admission.ts, wrapped around the handler in src/net/host.ts). Checked:
// the process survives, no attempt over the bound per peer or in all is ever taken on, every
// attempt gives its slot back, no WebRTC connection comes out of it, and afterwards the node
// still answers an honest offer with an SDP answer and an echo with its payload.
process.env.DBC_SKIP_BENCHMARK = '1'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { multiaddr } from '@multiformats/multiaddr'
import { Daemon } from '../../src/node/daemon.js'
import { buildSubsystems, resolveCity } from '../../src/node/subsystems.js'
import { loadConfig } from '../../src/node/config.js'
import { webrtcAdmissionOf } from '../../src/net/host.js'
import { isWebRTC } from '../../src/net/nat-addr.js'
import { FramedStream } from '../../src/net/framed.js'
import { createRng } from '../../src/core/rng.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { runFuzz, newIdentity } from './live-fuzzer.js'
import { WEBRTC_SIGNALING, SIGNALING_HOSTILE, SignalType, signalMessage, offerSdp, decodeSignal } from './webrtc-signaling-target.js'
import type { CraftContext } from './targets.js'

test('hostile signalling at a NATed daemon: within the admission bound, every slot given back, the node still answers an honest offer', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dbc-fuzz-webrtc-'))
  const config = loadConfig({ flags: { dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], location: '35.68,139.69', connectionMonitor: false, nat: { behindNat: true, relayServer: false } }, env: {} })
  const daemon = new Daemon({ config, subsystems: await buildSubsystems(config), resolveCity, logger: pino({ level: 'silent' }) })
  await daemon.start()
  try {
    const host = daemon.context.host
    assert.ok(host.getProtocols().includes(WEBRTC_SIGNALING), 'a NATed daemon with WebRTC on registers the signalling protocol')
    const admission = webrtcAdmissionOf(host)
    assert.ok(admission !== undefined)
    // attempts the library's handler is working on: inbound signalling streams open for 250 ms
    // or more (a refused one is aborted before the handler makes its PeerConnection, a failed one
    // when it fails; an attempt taken on lives until it connects or the 10 s upgrade timeout)
    let peakTotal = 0; let peakPeer = 0; let admitted = 0; let refused = 0
    const sample = (): void => {
      const perPeer = new Map<string, number>()
      const now = Date.now()
      for (const c of host.getConnections()) {
        for (const s of c.streams) if (s.protocol === WEBRTC_SIGNALING && s.direction === 'inbound' && s.status === 'open' && now - s.timeline.open >= 250) perPeer.set(c.remotePeer.toString(), (perPeer.get(c.remotePeer.toString()) ?? 0) + 1)
      }
      let total = 0
      for (const n of perPeer.values()) { total += n; peakPeer = Math.max(peakPeer, n) }
      peakTotal = Math.max(peakTotal, total)
    }
    const admit = admission.admit.bind(admission)
    admission.admit = (peer, open) => {
      const r = admit(peer, open)
      if (r === undefined) admitted++; else refused++
      return r
    }
    const sampler = setInterval(sample, 5)
    const rss0 = process.memoryUsage().rss

    const target = { peerId: host.peerId.toString(), addr: host.getMultiaddrs()[0].toString() }
    // 4 identities at once, 4 streams each: 16 attempts pressing on a bound of 1 per peer and 8 in all
    const r = await runFuzz({ target, frames: 1500, seed: 11, parallel: 4, streamsPerIdentity: 4, framesPerIdentity: 60, protocols: [WEBRTC_SIGNALING] })
    clearInterval(sampler)
    console.log(`  ${r.framesSent} frames on ${r.streams} streams (${r.refusedStreams} refused at negotiation) by ${r.identities.length} identities in ${r.elapsedMs} ms; attempts admitted ${admitted}, refused ${refused}; peak signalling streams in the handler ${peakTotal} in all, ${peakPeer} per peer; by case ${JSON.stringify(r.byCase)}; hostile ${JSON.stringify(r.byHostile)}`)
    for (const k of ['random-bytes', 'garbage-body', 'truncated', 'oversized', 'hostile']) assert.ok((r.byCase[k] ?? 0) > 0, `case ${k} was sent`)
    for (const h of SIGNALING_HOSTILE) assert.ok((r.byHostile[h.name] ?? 0) > 0, `hostile case ${h.name} was sent`)
    assert.ok(admitted > 0 && refused > 0, 'attempts were taken on and the bound refused some')
    assert.is(Object.values(admission.refusals).reduce((a, b) => a + b, 0), refused, 'each refusal counted (the daemon\'s dbc_webrtc_inbound_refusals_total)')
    assert.ok(peakPeer <= admission.limits.perPeerInFlight, `at most ${admission.limits.perPeerInFlight} attempt in flight per peer (saw ${peakPeer})`)
    assert.ok(peakTotal <= admission.limits.totalInFlight, `at most ${admission.limits.totalInFlight} attempts in flight in all (saw ${peakTotal})`)

    // an attempt lasts until the library's inbound upgrade timeout (10 s) at the latest
    const until = Date.now() + 20_000
    while (admission.attemptsInFlight > 0 && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 200))
    assert.is(admission.attemptsInFlight, 0, 'every attempt gave its slot back')
    assert.is(host.getConnections().filter(c => isWebRTC(c.remoteAddr)).length, 0, 'no WebRTC connection came out of hostile signalling')
    console.log(`  RSS ${Math.round(rss0 / 2 ** 20)} -> ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB (the fuzzer's identities run in this process too)`)

    // the node still works: an honest offer gets an SDP answer, and an echo comes back
    const honest = await newIdentity()
    try {
      const c: CraftContext = { rng: createRng(99), id: { secret: honest.secret, peerBytes: honest.peerBytes }, target: { peerBytes: host.peerId.toMultihash().bytes }, now: Date.now() }
      const stream = await honest.host.dialProtocol(multiaddr(target.addr), WEBRTC_SIGNALING, { signal: AbortSignal.timeout(5000) })
      const framed = new FramedStream(stream, { maxFrameBytes: 64 * 1024 })
      await framed.write(signalMessage(SignalType.SDP_OFFER, offerSdp(c)), { signal: AbortSignal.timeout(5000) })
      const reply = await framed.read({ signal: AbortSignal.timeout(5000) })
      assert.ok(reply !== undefined, 'the node answered the offer')
      const answer = decodeSignal(reply)
      assert.is(answer?.type, SignalType.SDP_ANSWER, `an SDP answer (got ${JSON.stringify(answer)?.slice(0, 80)})`)
      assert.match(answer?.data ?? '', /a=fingerprint:sha-256 /)
      stream.abort(new Error('done'))
      const echo = await honest.host.dialProtocol(multiaddr(target.addr), '/dbc/echo/1.0.0', { signal: AbortSignal.timeout(5000) })
      const ef = new FramedStream(echo, { maxFrameBytes: 64 * 1024 })
      await ef.write(dbc.common.v1.Echo.encode({ payload: new Uint8Array([1, 2, 3]) }).finish())
      const back = await ef.read({ signal: AbortSignal.timeout(5000) })
      assert.equal([...dbc.common.v1.Echo.decode(back ?? new Uint8Array()).payload], [1, 2, 3])
      await ef.close().catch(() => {})
    } finally {
      await Promise.resolve(honest.host.stop()).catch(() => {})
    }
  } finally {
    await daemon.stop()
    rmSync(dataDir, { recursive: true, force: true })
    // node-datachannel's threads keep a process alive after an answered offer, closed or not,
    // until cleanup (the CLI exits explicitly: src/cli/node.ts)
    ;(await import('node-datachannel')).cleanup()
  }
})

test.run()
