// Fuzz coverage: every protocol a running daemon registers has a fuzz target (test/fuzz/targets.ts),
// for a public daemon and for one behind NAT with WebRTC on (which registers WebRTC signalling).
// The check reads the protocols as the live fuzzer does (identify, from a connecting peer) and
// compares them with the daemon's own registrar. Shown to catch a miss: a daemon with an extra
// subsystem registering /dbc/dummy/1.0.0 reports exactly that protocol, and the fuzzer refuses
// to run against it; a daemon built as `dbc node start` builds it reports nothing missing.
process.env.DBC_SKIP_BENCHMARK = '1'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { Daemon, type Subsystem, type DaemonContext } from '../../src/node/daemon.js'
import { buildSubsystems, resolveCity } from '../../src/node/subsystems.js'
import { loadConfig } from '../../src/node/config.js'
import { OverlaySubsystem } from '../../src/node/overlay-subsystem.js'
import { multiaddr } from '@multiformats/multiaddr'
import { discoverProtocols, runFuzz, newIdentity } from './live-fuzzer.js'
import { missingFuzzTargets, fuzzTargetFor, DBC_TARGETS, HOSTILE_COORDINATES } from './targets.js'
import { WEBRTC_SIGNALING } from './webrtc-signaling-target.js'

const DUMMY = '/dbc/dummy/1.0.0'

class DummySubsystem implements Subsystem {
  readonly name = 'dummy'
  private ctx: DaemonContext | undefined
  async start (ctx: DaemonContext): Promise<void> {
    this.ctx = ctx
    await ctx.host.handle(DUMMY, (stream) => { void stream.close().catch(() => {}) })
  }

  async stop (): Promise<void> { await this.ctx?.host.unhandle(DUMMY) }
}

async function withDaemon (subsystems: (config: ReturnType<typeof loadConfig>) => Promise<Subsystem[]>, fn: (d: Daemon, target: { peerId: string, addr: string }) => Promise<void>, flags: Record<string, unknown> = {}): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dbc-fuzz-cov-'))
  const config = loadConfig({ flags: { dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], location: '35.68,139.69', connectionMonitor: false, ...flags } as any, env: {} })
  const daemon = new Daemon({ config, subsystems: await subsystems(config), resolveCity, logger: pino({ level: 'silent' }) })
  await daemon.start()
  try {
    const host = daemon.context.host
    await fn(daemon, { peerId: host.peerId.toString(), addr: host.getMultiaddrs()[0].toString() })
  } finally {
    await daemon.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

test('a protocol registered without a fuzz target is reported, exactly, and the fuzzer refuses to run', async () => {
  await withDaemon(async () => [new DummySubsystem()], async (daemon, target) => {
    const seen = await discoverProtocols(target)
    assert.equal(seen, [...daemon.context.host.getProtocols()].sort(), 'identify lists every registered protocol')
    assert.ok(seen.includes(DUMMY))
    assert.equal(missingFuzzTargets(seen), [DUMMY])
    try {
      await runFuzz({ target, frames: 1 })
      assert.unreachable('the fuzzer ran against a daemon with an unfuzzed protocol')
    } catch (err) {
      assert.match((err as Error).message, DUMMY)
    }
  })
})

test('a daemon built as `dbc node start` builds it has a fuzz target for every protocol', async () => {
  await withDaemon(buildSubsystems, async (daemon, target) => {
    const registered = [...daemon.context.host.getProtocols()].sort()
    const seen = await discoverProtocols(target)
    assert.equal(seen, registered, 'identify lists every registered protocol')
    assert.equal(missingFuzzTargets(registered), [])
    // every dbc protocol of the node's own has its crafters, the all-reduce and Vivaldi ones included
    for (const p of ['/dbc/allreduce/1.0.0', '/dbc/vivaldi/1.0.0', '/dbc/task/1.0.0', '/dbc/relay/1.0.0', '/dbc/membership/1.0.0', '/dbc/capability/1.0.0', '/dbc/echo/1.0.0']) {
      assert.ok(registered.includes(p), `${p} not registered`)
      assert.ok(DBC_TARGETS[p] !== undefined && DBC_TARGETS[p].hostile.length > 0, `${p} has no crafters`)
    }
  })
})

// a node behind NAT registers what a public one does not (WebRTC signalling, @libp2p/webrtc's own):
// the next protocol added there must be noticed too
test('a daemon behind NAT with WebRTC on, as `dbc node start --behind-nat` builds it, has a fuzz target for every protocol', async () => {
  await withDaemon(buildSubsystems, async (daemon, target) => {
    const registered = [...daemon.context.host.getProtocols()].sort()
    const seen = await discoverProtocols(target)
    // the NATed node may open a reservation (hop) stream to the fuzzer's identity, a would-be
    // relay, which then records hop as the node's too: seen may hold more, never less
    assert.equal(registered.filter(p => !seen.includes(p)), [], 'identify lists every registered protocol')
    assert.equal(missingFuzzTargets(seen), [])
    assert.ok(registered.includes(WEBRTC_SIGNALING), `WebRTC signalling registered: ${registered.join(' ')}`)
    assert.equal(missingFuzzTargets(registered), [])
    const t = fuzzTargetFor(WEBRTC_SIGNALING)
    assert.ok(t?.hostile !== undefined && t.hostile.length > 0 && t.valid !== undefined, 'signalling has crafted messages, not only garbage')
  }, { nat: { behindNat: true, relayServer: false } })
  ;(await import('node-datachannel')).cleanup()
})

test('a fuzz identity answers the node\'s Vivaldi probes with hostile coordinates; the node keeps a finite one', async () => {
  await withDaemon(buildSubsystems, async (daemon, target) => {
    const overlay = (daemon as unknown as { subsystems: Subsystem[] }).subsystems.find((s): s is OverlaySubsystem => s instanceof OverlaySubsystem)?.overlay
    assert.ok(overlay !== undefined)
    const id = await newIdentity({ hostileVivaldi: true })
    try {
      await id.host.dial(multiaddr(target.addr))
      for (let i = 0; i < HOSTILE_COORDINATES.length; i++) await overlay.measure(id.peerId).catch(() => {})
      assert.ok(id.vivaldiAnswers >= HOSTILE_COORDINATES.length, `the node probed the identity ${id.vivaldiAnswers} times`)
      assert.ok([...overlay.coordinate].every(Number.isFinite), `coordinate ${String([...overlay.coordinate])}`)
      assert.is(overlay.known.get(id.peerId)?.vivaldi, undefined, 'a hostile coordinate was stored')
    } finally {
      await Promise.resolve(id.host.stop()).catch(() => {})
    }
  })
})

test.run()
