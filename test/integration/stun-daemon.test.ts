// The STUN responder and the WebRTC admission in the daemon (review s10 L11): their counters reach
// the daemon's /metrics (an operator sees a flood or a drained bucket), and a daemon whose start
// fails after it bound the STUN port (API port taken) closes that socket: the port binds again.
process.env.DBC_SKIP_BENCHMARK = '1'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import dgram from 'node:dgram'
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { Daemon } from '../../src/node/daemon.js'
import { loadConfig } from '../../src/node/config.js'

async function freeUdpPort (): Promise<number> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>(resolve => s.bind(0, '127.0.0.1', resolve))
  const port = s.address().port
  await new Promise<void>(resolve => s.close(() => { resolve() }))
  return port
}

async function bindsAgain (port: number): Promise<boolean> {
  const s = dgram.createSocket({ type: 'udp6', ipv6Only: false })
  return await new Promise(resolve => {
    s.once('error', () => { s.close(); resolve(false) })
    s.bind(port, '::', () => { s.close(); resolve(true) })
  })
}

function request (): Buffer {
  const m = Buffer.alloc(20)
  m.writeUInt16BE(0x0001, 0); m.writeUInt32BE(0x2112a442, 4); randomBytes(12).copy(m, 8)
  return m
}

function daemonWith (flags: Record<string, unknown>): { daemon: Daemon, dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'dbc-stun-daemon-'))
  const config = loadConfig({ flags: { dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], location: '35.68,139.69', connectionMonitor: false, ...flags } as any, env: {} })
  return { daemon: new Daemon({ config, subsystems: [], logger: pino({ level: 'silent' }) }), dataDir }
}

const series = (text: string, name: string): number => Number(text.split('\n').find(l => l.startsWith(name + ' '))?.slice(name.length + 1) ?? NaN)

test('a public relay node\'s STUN counters are on /metrics', async () => {
  const stunPort = await freeUdpPort()
  const { daemon, dataDir } = daemonWith({ nat: { behindNat: false, relayServer: true, stunPort }, metrics: { listen: '127.0.0.1:0' } })
  await daemon.start()
  const s = dgram.createSocket('udp4')
  try {
    await new Promise<void>(resolve => s.bind(0, '127.0.0.1', resolve))
    let answers = 0
    s.on('message', () => { answers++ })
    const t0 = Date.now()
    for (let i = 0; i < 3; i++) s.send(request(), stunPort, '127.0.0.1')
    for (let i = 0; i < 5; i++) s.send(randomBytes(40), stunPort, '127.0.0.1')
    for (let i = 0; i < 76; i++) s.send(request(), stunPort, '127.0.0.1') // past the burst of 64
    await new Promise(resolve => setTimeout(resolve, 300))
    const text = await (await fetch(`http://${daemon.metricsAddress ?? ''}/metrics`)).text()
    // the source's bucket refills one answer per 125 ms while the datagrams are handled
    const refilled = Math.ceil((Date.now() - t0) / 125)
    const answered = series(text, 'dbc_stun_requests_total{outcome="answered"}')
    console.log(`  ${answers} answers; metrics answered ${answered}, dropped ${series(text, 'dbc_stun_requests_total{outcome="dropped"}')}, limited ${series(text, 'dbc_stun_requests_total{outcome="limited"}')}`)
    assert.is(answered, answers)
    assert.ok(answered >= 64 && answered <= 64 + refilled, `the burst of one source and what refilled meanwhile (${answered}, at most ${64 + refilled})`)
    assert.is(series(text, 'dbc_stun_requests_total{outcome="dropped"}'), 5)
    assert.is(series(text, 'dbc_stun_requests_total{outcome="limited"}'), 79 - answered)
    assert.not.match(text, /dbc_webrtc_inbound_refusals_total\{/, 'a public node runs no WebRTC: no refusal series')
  } finally {
    s.close()
    await daemon.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('a NATed node\'s WebRTC admission is on /metrics', async () => {
  const { daemon, dataDir } = daemonWith({ nat: { behindNat: true, relayServer: false }, metrics: { listen: '127.0.0.1:0' } })
  await daemon.start()
  try {
    const text = await (await fetch(`http://${daemon.metricsAddress ?? ''}/metrics`)).text()
    assert.is(series(text, 'dbc_webrtc_inbound_attempts'), 0)
    for (const reason of ['peer-in-flight', 'total-in-flight', 'peer-open', 'total-open']) assert.is(series(text, `dbc_webrtc_inbound_refusals_total{reason="${reason}"}`), 0, reason)
    assert.not.match(text, /dbc_stun_requests_total\{/, 'a NATed node runs no STUN responder')
  } finally {
    await daemon.stop()
    rmSync(dataDir, { recursive: true, force: true })
    ;(await import('node-datachannel')).cleanup()
  }
})

test('a start that fails after the STUN responder bound its port (API port taken) closes the socket', async () => {
  const stunPort = await freeUdpPort()
  const busy = net.createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  const apiPort = (busy.address() as net.AddressInfo).port
  const { daemon, dataDir } = daemonWith({ nat: { behindNat: false, relayServer: true, stunPort }, api: { port: apiPort } })
  try {
    await daemon.start().then(() => { assert.unreachable('started with its API port taken') }, (err: Error) => { assert.match(err.message, /cannot listen/) })
    assert.ok(await bindsAgain(stunPort), `UDP ${stunPort} is free again`)
  } finally {
    busy.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test.run()
