// The metrics module on its own (src/node/metrics): the `metrics.listen` setting, bad input counted
// by the protocol served, bans counted once, counters mirrored from stats objects, slot events
// turned into task counters, and the readiness verdict.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EventEmitter } from 'node:events'
import { channel } from 'node:diagnostics_channel'
import { loadConfig } from '../../../src/node/config.js'
import { ConfigError } from '../../../src/errors.js'
import { parseListen } from '../../../src/node/metrics/listen.js'
import { createNodeMetrics, ALLREDUCE_CHANNEL } from '../../../src/node/metrics/index.js'
import { HealthChecks } from '../../../src/node/metrics/health.js'
import { withProtocolContext } from '../../../src/node/protocol-context.js'
import { PeerScoreBook } from '../../../src/core/routing/score.js'
import { InboundGuard } from '../../../src/net/guard/index.js'

function value (text: string, series: string): number {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

test('metrics.listen: a port alone means loopback; bad values name the setting', () => {
  assert.equal(parseListen('9464'), { host: '127.0.0.1', port: 9464 })
  assert.equal(parseListen('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 })
  assert.equal(parseListen('[::1]:0'), { host: '::1', port: 0 })
  assert.is(parseListen('70000'), undefined)
  assert.is(parseListen('http://x:1'), undefined)
  const dataDir = '/tmp/dbc-metrics-unit'
  assert.is(loadConfig({ flags: { dataDir }, env: {} }).metrics, undefined, 'off by default')
  assert.equal(loadConfig({ flags: { dataDir }, env: { DBC_METRICS_LISTEN: '127.0.0.1:9464' } }).metrics, { listen: '127.0.0.1:9464' })
  assert.equal(loadConfig({ flags: { dataDir, metrics: { listen: '9100' } }, env: {} }).metrics, { listen: '9100' })
  for (const [layer, key] of [[{ metrics: { listen: 'nine' } }, 'metrics.listen'], [{ metrics: { listen: '9464', port: 1 } }, 'metrics.port']] as const) {
    try {
      loadConfig({ flags: { dataDir, ...layer }, env: {} })
      assert.unreachable('accepted')
    } catch (err) {
      assert.instance(err, ConfigError)
      assert.is((err as ConfigError).key, key)
    }
  }
})

function fakeSources (): { sources: Parameters<typeof createNodeMetrics>[0], slots: EventEmitter, envelopes: Record<string, number> } {
  const slots = new EventEmitter()
  const envelopes = { sent: 0, delivered: 0, received: 0 }
  const host = { getPeers: () => [1, 2], getConnections: () => [{ direction: 'inbound', streams: [{ protocol: '/dbc/task/1.0.0', direction: 'inbound' }] }], services: { dht: { routingTable: { size: 5 } } } }
  const sources = {
    host: host as any,
    scores: new PeerScoreBook<string>(),
    guard: new InboundGuard({ identityGate: false }),
    subsystems: [{ name: 'overlay', overlay: { envelopes: { stats: envelopes }, membership: { stats: { sent: 1 }, peers: () => [1, 2, 3] } } }],
    slotEvents: () => slots
  }
  return { sources, slots, envelopes }
}

test('bad input is counted by the protocol being served; a ban once per peer', async () => {
  const { sources } = fakeSources()
  const m = createNodeMetrics(sources)
  withProtocolContext({ protocol: '/dbc/echo/1.0.0', peer: 'p1' }, () => { m.badInput('p1', 'malformed', false) })
  withProtocolContext({ protocol: '/dbc/echo/1.0.0', peer: 'p1' }, () => { m.badInput('p1', 'malformed', true) })
  m.badInput('p1', 'oversized', true) // its streams still in flight report again
  m.badInput('p2', 'slow-frame', true, '/dbc/task/1.0.0')
  const text = await m.text()
  assert.is(value(text, 'dbc_bad_input_total{protocol="/dbc/echo/1.0.0",offence="malformed"}'), 2)
  assert.is(value(text, 'dbc_bad_input_total{protocol="unknown",offence="oversized"}'), 1)
  assert.is(value(text, 'dbc_bad_input_total{protocol="/dbc/task/1.0.0",offence="slow-frame"}'), 1)
  assert.is(value(text, 'dbc_peer_bans_total'), 2)
})

test('scrape-time series follow the stats they read; slot events and all-reduces are counted', async () => {
  const { sources, slots, envelopes } = fakeSources()
  const m = createNodeMetrics(sources)
  m.watch()
  try {
    envelopes.sent = 3; envelopes.delivered = 2
    let text = await m.text()
    assert.is(value(text, 'dbc_peers'), 2)
    assert.is(value(text, 'dbc_streams{protocol="/dbc/task/1.0.0",direction="inbound"}'), 1)
    assert.is(value(text, 'dbc_dht_routing_table_peers'), 5)
    assert.is(value(text, 'dbc_envelope_events_total{event="sent"}'), 3)
    assert.is(value(text, 'dbc_membership_view_peers'), 3)
    envelopes.sent = 7
    slots.emit('event', { type: 'started', taskId: 'a' })
    slots.emit('event', { type: 'finished', taskId: 'a', ok: true })
    slots.emit('event', { type: 'started', taskId: 'b' })
    slots.emit('event', { type: 'finished', taskId: 'b', ok: false })
    slots.emit('event', { type: 'refused', taskId: 'c', reason: 'the queue is full (64 tasks waiting)' })
    channel(ALLREDUCE_CHANNEL).publish({ durationMs: 120, bytesSent: 1000, bytesReceived: 900, timedOut: false })
    text = await m.text()
    assert.is(value(text, 'dbc_envelope_events_total{event="sent"}'), 7)
    assert.is(value(text, 'dbc_provider_tasks_total{outcome="started"}'), 2)
    assert.is(value(text, 'dbc_provider_tasks_total{outcome="succeeded"}'), 1)
    assert.is(value(text, 'dbc_provider_tasks_total{outcome="failed"}'), 1)
    assert.is(value(text, 'dbc_provider_task_refusals_total{reason="queue_full"}'), 1)
    assert.is(value(text, 'dbc_provider_task_duration_seconds_count{ok="true"}'), 1)
    assert.is(value(text, 'dbc_training_allreduce_duration_seconds_count'), 1)
    assert.is(value(text, 'dbc_training_allreduce_bytes_total{direction="sent"}'), 1000)
  } finally {
    m.stop()
  }
  // stopped: events no longer counted
  slots.emit('event', { type: 'started', taskId: 'd' })
  assert.is(value(await m.text(), 'dbc_provider_tasks_total{outcome="started"}'), 2)
})

test('a provider\'s offers and answers are counted by result and code', async () => {
  const m = createNodeMetrics(fakeSources().sources)
  let refuse = ''
  const provider = m.meterProvider({
    offer: () => ({ refusal: refuse }),
    runTask: async (error: string) => error === '' ? { ok: true } : { ok: false, error }
  })
  provider.offer()
  refuse = 'executor docker is not offered here'
  provider.offer()
  await provider.runTask('')
  await provider.runTask('PAYMENT_MISSING: the lease names no escrow')
  await provider.runTask('refused: lease expired')
  const text = await m.text()
  assert.is(value(text, 'dbc_provider_offers_total{result="offered",code=""}'), 1)
  assert.is(value(text, 'dbc_provider_offers_total{result="refused",code="OTHER"}'), 1)
  assert.is(value(text, 'dbc_provider_task_answers_total{result="ok",code=""}'), 1)
  assert.is(value(text, 'dbc_provider_task_answers_total{result="error",code="PAYMENT_MISSING"}'), 1)
  assert.is(value(text, 'dbc_provider_task_answers_total{result="error",code="LEASE_REFUSED"}'), 1)
})

test('each task of a bundle is counted as an answer', async () => {
  const m = createNodeMetrics(fakeSources().sources)
  const provider = m.meterProvider({
    offer: () => ({ refusal: '' }),
    runTask: async () => ({ ok: true }),
    runBundle: async (errors: string[]) => errors.map(error => error === '' ? { ok: true } : { ok: false, error })
  })
  await provider.runBundle!(['', '', 'LEASE_SLOTS_BUSY: the bundle ran past its cut'])
  const text = await m.text()
  assert.is(value(text, 'dbc_provider_task_answers_total{result="ok",code=""}'), 2)
  assert.is(value(text, 'dbc_provider_task_answers_total{result="error",code="LEASE_SLOTS_BUSY"}'), 1)
})

test('ready: peers (or no bootstrap list) and a chain that answers', async () => {
  let peers: unknown[] = []
  let chainUp = true
  const make = (bootstrapCount: number, withChain = true): HealthChecks => new HealthChecks({
    host: { getPeers: () => peers as any },
    bootstrapCount,
    chainHead: () => withChain ? async () => { if (!chainUp) throw new Error('connection refused'); return 42n } : undefined,
    stopping: () => false,
    startedAt: Date.now()
  })
  assert.is((await make(0).ready()).status, 200, 'a lone node with no bootstrap list is its own network')
  const joining = make(2)
  const r = await joining.ready()
  assert.is(r.status, 503)
  assert.is(r.body.checks.network.ok, false)
  assert.is(joining.lastReady, false)
  peers = [1]
  assert.is((await make(2).ready()).status, 200)
  chainUp = false
  const down = await make(2).ready()
  assert.is(down.status, 503)
  assert.match(down.body.checks.chain.detail, /unreachable: connection refused/)
  assert.is((await make(2, false).ready()).status, 503, 'no chain bridge: not ready')
  assert.is(make(2).live().status, 200)
})

test.run()
