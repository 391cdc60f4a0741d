// Metrics and health (issue 16 §3), on real daemons sharing one anvil chain: a provider started
// with --metrics serves Prometheus text whose task and byte counters move while a paid job runs on
// it, and whose bad-input counter for /dbc/task/1.0.0 moves when a peer sends that protocol a frame
// that does not decode. /healthz and /readyz answer without a token (on the control API's address
// and on the metrics address); /v1/* does not. A node started without --metrics opens no listener
// beyond its libp2p and control-API sockets.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'
import { writeSquaresJob } from '../security/harness.js'
import { newIdentity } from '../fuzz/live-fuzzer.js'
import { multiaddr } from '@multiformats/multiaddr'
import { encodeFrame } from '../../src/wire/frame.js'
import { readApiInfo } from '../../src/api/client.js'

const TASK = '/dbc/task/1.0.0'
const apiPort = (n: LocalNode): number => readApiInfo(n.dataDir)?.port as number
const tcpPort = (addr: string): number => Number(/\/tcp\/(\d+)/.exec(addr)?.[1])
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** The exposition text as samples: `name{labels}` → value. */
function parseExposition (text: string): Array<{ name: string, labels: Record<string, string>, value: number }> {
  const out = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line)
    if (m === null) throw new Error(`not an exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1')
    out.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return out
}

/** Sum of the samples of `name` whose labels include `labels`. */
function valueOf (text: string, name: string, labels: Record<string, string> = {}): number {
  return parseExposition(text)
    .filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0)
}

async function get (url: string, token?: string): Promise<{ status: number, text: string, type: string }> {
  const res = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) })
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' }
}

/** TCP ports a process listens on (from /proc: its socket inodes in LISTEN state). */
function listeningPorts (pid: number): number[] {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`)); if (m !== null) inodes.add(m[1]) } catch {}
  }
  const ports: number[] = []
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let rows: string[]
    try { rows = readFileSync(f, 'utf8').split('\n').slice(1) } catch { continue }
    for (const row of rows) {
      const c = row.trim().split(/\s+/)
      if (c.length < 10 || c[3] !== '0A' || !inodes.has(c[9])) continue
      ports.push(parseInt(c[1].split(':')[1], 16))
    }
  }
  return ports.sort((a, b) => a - b)
}

let net: LocalNetwork
let submitter: LocalNode
let provider: LocalNode
let metricsUrl: string

test.before(async () => {
  net = new LocalNetwork()
  submitter = await net.start({ name: 'submitter', location: '35.68,139.69', extra: ['--no-connection-monitor'] })
  provider = await net.start({ name: 'provider', location: '35.68,139.69', extra: ['--no-connection-monitor', '--metrics', '0'] }, [submitter.addrs[0]])
  const deadline = Date.now() + 60_000
  for (;;) {
    const { peers } = await submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
    if (peers.some(p => p.peerId === provider.peerId)) break
    if (Date.now() > deadline) throw new Error('the provider did not connect to the submitter')
    await sleep(200)
  }
  const st = await provider.api.call<{ metrics: string | null }>('GET', '/v1/status')
  assert.type(st.metrics, 'string', 'the provider started with --metrics reports where /metrics listens')
  metricsUrl = `http://${st.metrics as string}`
})

test.after(async () => { await net?.stop() })

test('metrics are off by default: no listener beyond libp2p and the control API', async () => {
  const st = await submitter.api.call<{ metrics: string | null, addrs: string[] }>('GET', '/v1/status')
  assert.is(st.metrics, null)
  const libp2pPorts = new Set(st.addrs.map(a => tcpPort(a)))
  const ports = listeningPorts(submitter.process.pid as number)
  const others = ports.filter(p => !libp2pPorts.has(p) && p !== apiPort(submitter))
  assert.equal(others, [], `the submitter listens on ${ports.join(', ')}: libp2p ${[...libp2pPorts].join(', ')}, API ${apiPort(submitter)}`)
  // the metrics node listens on exactly one more port: the metrics address
  const pst = await provider.api.call<{ metrics: string, addrs: string[] }>('GET', '/v1/status')
  const pLibp2p = new Set(pst.addrs.map(a => tcpPort(a)))
  const extra = listeningPorts(provider.process.pid as number).filter(p => !pLibp2p.has(p) && p !== apiPort(provider))
  assert.equal(extra, [Number(pst.metrics.split(':').pop())])
  assert.ok(pst.metrics.startsWith('127.0.0.1:'), 'a port alone listens on loopback')
})

test('health answers without a token, on both addresses; /v1 does not', async () => {
  const api = `http://127.0.0.1:${apiPort(provider)}`
  for (const base of [api, metricsUrl]) {
    const live = await get(`${base}/healthz`)
    assert.is(live.status, 200, `${base}/healthz: ${live.text}`)
    assert.is(JSON.parse(live.text).status, 'ok')
    const ready = await get(`${base}/readyz`)
    assert.is(ready.status, 200, `${base}/readyz: ${ready.text}`)
    const checks = JSON.parse(ready.text).checks
    assert.ok(checks.network.ok && checks.chain.ok, ready.text)
  }
  assert.is((await get(`${api}/v1/status`)).status, 401)
  assert.is((await get(`${api}/v1/status`, 'not-the-token')).status, 401)
  assert.is((await get(`${api}/v1/jobs`)).status, 401)
  // the metrics address serves only its three paths
  assert.is((await get(`${metricsUrl}/v1/status`)).status, 404)
})

test('task and byte counters move while a job runs on the provider', async () => {
  const before = (await get(`${metricsUrl}/metrics`)).text
  assert.ok(before.includes('# TYPE dbc_provider_tasks_total counter'), 'the task counter is exported')
  const tasks = 200
  const dir = join(net.root, 'job')
  mkdirSync(dir, { recursive: true })
  const manifest = writeSquaresJob(dir, tasks, 7, 'metrics-squares')
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 60_000 })
  // scrape all through the job; a scrape counts as "during" when the job still ran after it
  const during: number[] = []
  let status: Record<string, any>
  const end = Date.now() + 240_000
  for (;;) {
    const scrape = await get(`${metricsUrl}/metrics`)
    assert.is(scrape.status, 200)
    assert.ok(scrape.type.startsWith('text/plain'), scrape.type)
    status = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 })
    if (status.status !== 'running') break
    during.push(valueOf(scrape.text, 'dbc_provider_tasks_total', { outcome: 'succeeded' }))
    if (Date.now() > end) break
    await sleep(100)
  }
  assert.is(status.status, 'finished', `job ${jobId} ended ${String(status.status)}`)
  assert.ok(during.length >= 1, 'no scrape happened while the job ran')
  const after = (await get(`${metricsUrl}/metrics`)).text
  const succeeded = (t: string): number => valueOf(t, 'dbc_provider_tasks_total', { outcome: 'succeeded' })
  const started = (t: string): number => valueOf(t, 'dbc_provider_tasks_total', { outcome: 'started' })
  const received = (t: string): number => valueOf(t, 'libp2p_data_transfer_bytes_total', { protocol: `${TASK} received` })
  const sent = (t: string): number => valueOf(t, 'libp2p_data_transfer_bytes_total', { protocol: `${TASK} sent` })
  // counters never go back, and the job moved them
  for (let i = 1; i < during.length; i++) assert.ok(during[i] >= during[i - 1], `the task counter went back: ${during.join(', ')}`)
  assert.ok(succeeded(after) > succeeded(before), `tasks succeeded ${succeeded(before)} → ${succeeded(after)}`)
  assert.ok(started(after) >= succeeded(after) - succeeded(before), 'every finished task was started')
  // every task's input (8 bytes) and result went over the task protocol
  assert.ok(received(after) - received(before) >= tasks * 8, `task bytes received ${received(before)} → ${received(after)}`)
  assert.ok(sent(after) > sent(before), `task bytes sent ${sent(before)} → ${sent(after)}`)
  assert.ok(valueOf(after, 'dbc_provider_task_duration_seconds_count') >= succeeded(after), 'each task\'s duration was observed')
  const answered = (t: string): number => valueOf(t, 'dbc_provider_task_answers_total', { result: 'ok' })
  assert.ok(answered(after) - answered(before) >= succeeded(after) - succeeded(before), `task answers ${answered(before)} → ${answered(after)}`)
  assert.ok(valueOf(after, 'dbc_provider_offers_total', { result: 'offered' }) > valueOf(before, 'dbc_provider_offers_total', { result: 'offered' }), 'the job\'s lease requests were offered')
  for (const series of ['dbc_chain_send_queue_depth', 'dbc_chain_redeems', 'dbc_envelope_events_total', 'dbc_streams']) assert.ok(after.includes(`# TYPE ${series} `), `${series} is exported`)
  assert.ok(valueOf(after, 'dbc_peers') >= 1)
  assert.is(valueOf(after, 'dbc_ready'), 1, 'ready: it has a peer and its chain answers')
  assert.ok(valueOf(after, 'dbc_provider_slots', { state: 'cpu_capacity' }) >= 1)
  assert.ok(after.includes('nodejs_heap_size_total_bytes'), 'the process metrics come along')
  console.log(`  ${during.length} scrapes during the job; tasks succeeded ${succeeded(before)} → ${succeeded(after)}, task bytes received ${received(before)} → ${received(after)}`)
})

test('a peer sending garbage moves the bad-input counter of that protocol', async () => {
  const bad = (t: string): number => valueOf(t, 'dbc_bad_input_total', { protocol: TASK })
  const before = bad((await get(`${metricsUrl}/metrics`)).text)
  const id = await newIdentity()
  try {
    const stream = await id.host.dialProtocol(multiaddr(provider.addrs[0]), TASK, { signal: AbortSignal.timeout(10_000) })
    // field 1 with wire type 7: no protobuf decoder accepts it
    stream.send(encodeFrame(new Uint8Array([0x0f, 0x00, 0x00])))
    let now = before
    const deadline = Date.now() + 30_000
    while (now <= before && Date.now() < deadline) {
      await sleep(200)
      now = bad((await get(`${metricsUrl}/metrics`)).text)
    }
    assert.ok(now > before, `bad input on ${TASK}: ${before} → ${now}`)
    const text = (await get(`${metricsUrl}/metrics`)).text
    assert.ok(valueOf(text, 'dbc_bad_input_total', { protocol: TASK, offence: 'malformed' }) >= 1, 'charged as malformed')
    assert.ok(valueOf(text, 'dbc_penalized_peers') >= 1, 'the sender is penalised')
  } finally {
    await Promise.resolve(id.host.stop()).catch(() => {})
  }
})

test.run()
