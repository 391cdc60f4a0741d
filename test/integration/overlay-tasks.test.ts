// test-timeout-s: 600
// Task messages over sealed envelopes (`routing: overlay`), real daemons: two relays, a provider
// behind NAT (reachable only through a relay reservation) and a submitter. A job with `routing:
// overlay` finishes with every result correct and billed once, explain shows overlay routes via
// the relays, and the submitter holds no connection with the provider while the job runs (its
// gater refuses them both ways); a task with a 1 MiB input crosses in chunks.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { sleep, waitUntil } from '../helpers/wait.js'
import { recordsJobManifest } from '../helpers/manifest.js'

const net = new LocalNetwork()
let relays: LocalNode[] = []
let provider: LocalNode
let submitter: LocalNode
const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 90_000): Promise<void> => { await waitUntil(what, ok, { ms, everyMs: 250 }) }

const peersOf = async (n: LocalNode): Promise<string[]> => (await n.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')).peers.map(p => p.peerId)

/** Submits `manifest`, sampling the submitter's connections until the job ends; returns the status and whether it ever held one to the provider. */
async function runJob (manifest: Record<string, unknown>, dir: string): Promise<{ jobId: string, status: Record<string, any>, connectedSamples: number, samples: number }> {
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 30_000 })
  let status: Record<string, any> = {}
  let connectedSamples = 0; let samples = 0
  const end = Date.now() + 240_000
  for (;;) {
    status = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 10_000 })
    // once the first copy is done the provider has been private for a while: from then on, never connected
    if ((status.done ?? 0) > 0 || status.status !== 'running') {
      samples++
      if ((await peersOf(submitter)).includes(provider.peerId)) connectedSamples++
    }
    if (status.status !== 'running' || Date.now() > end) break
    await sleep(150)
  }
  return { jobId, status, connectedSamples, samples }
}

test.before(async () => {
  // relays first (they relay circuits and overlay envelopes), then the NATed provider, then the submitter
  const r1 = await net.start({ name: 'relay1', location: 'Frankfurt' }, [], { timeoutMs: 180_000 })
  const r2 = await net.start({ name: 'relay2', location: 'Paris' }, [r1.addrs[0]], { timeoutMs: 180_000 })
  relays = [r1, r2]
  const cfg = join(net.root, 'provider.json')
  writeFileSync(cfg, JSON.stringify({ nat: { relayReservations: 2 } }))
  provider = await net.start({ name: 'provider', location: 'Amsterdam', extra: ['--behind-nat', '--config', cfg] }, [r1.addrs[0], r2.addrs[0]], { timeoutMs: 180_000 })
  submitter = await net.start({ name: 'submitter', location: 'London', extra: ['--no-relay'] }, [r1.addrs[0], r2.addrs[0]], { timeoutMs: 180_000 })
  // the overlay's paths: both relays hold a connection to the provider (its reservations) and to the submitter
  for (const r of relays) await waitFor(`${r.spec.name} to hold the provider and the submitter`, async () => { const p = await peersOf(r); return p.includes(provider.peerId) && p.includes(submitter.peerId) })
  // the submitter learns of the provider (gossip, the DHT) before it submits
  await waitFor('the submitter to know the provider', async () => {
    if ((await peersOf(submitter)).includes(provider.peerId)) return true
    const c = await submitter.api.call<{ results: Array<{ peerId: string }> }>('GET', '/v1/capabilities?capability=executor:wasm&want=10')
    return c.results.some(r => r.peerId === provider.peerId)
  })
})

test.after(async () => { await net.stop() })

test('a job with routing: overlay runs on the NATed provider through sealed envelopes; results correct, billed once, no connection', async () => {
  const tasks = 8
  const dir = join(net.root, 'job-overlay')
  mkdirSync(dir, { recursive: true })
  const data = Buffer.alloc(8 * tasks)
  for (let i = 0; i < tasks; i++) data.writeDoubleLE(i + 0.5, i * 8)
  writeFileSync(join(dir, 'data.bin'), data)
  const manifest = recordsJobManifest('squares-over-the-overlay', 'square', 'data.bin', {
    verification: { mode: 'off' },
    routing: 'overlay',
    task: { timeoutMs: 30_000, expectedMs: 5, maxAttempts: 6 }
  })
  const r = await runJob(manifest, dir)
  if (r.status.status !== 'finished') {
    const why = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${r.jobId}/explain?task=0`)
    assert.unreachable(`job ${String(r.status.status)}: ${JSON.stringify(why).slice(0, 3000)}\nsubmitter log:\n${net.logOf(submitter).slice(-3000)}`)
  }
  const { results } = await submitter.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${r.jobId}/results`)
  assert.is(results.length, tasks)
  for (const res of results) {
    const x = res.index + 0.5
    assert.is(Buffer.from(res.output, 'base64').readDoubleLE(0), x * x, `task ${res.index}`)
  }
  assert.is(r.status.billedCopies ?? r.status.summary?.billedCopies, tasks, 'each task billed once')
  // every copy ran on the NATed provider (the relays are the submitter's bootstrap peers: ROUTE_PRIVATE), over the overlay
  const shares: Record<string, number> = {}
  for (let t = 0; t < tasks; t++) {
    const e = await submitter.api.call<{ task: { copies: Array<{ provider: string, outcome?: string, route?: { kind: string, relays?: string[] } }> } }>('GET', `/v1/jobs/${r.jobId}/explain?task=${t}`)
    for (const c of e.task.copies) {
      assert.is(c.provider, provider.peerId, `task ${t} ran on the NATed provider`)
      assert.is(c.route?.kind, 'overlay', `task ${t}'s route`)
      for (const via of c.route?.relays ?? []) assert.ok(relays.some(x => x.peerId === via), `relay ${via} is one of the relays`)
      shares[c.route?.kind ?? 'none'] = (shares[c.route?.kind ?? 'none'] ?? 0) + 1
    }
  }
  const explain = await submitter.api.call<{ routes: Record<string, { kind: string, relays?: string[], uses?: Record<string, number> }> }>('GET', `/v1/jobs/${r.jobId}/explain?task=0`)
  const route = explain.routes[provider.peerId]
  assert.ok((route.relays ?? []).length > 0, 'the route names the relays')
  assert.is(route.uses?.direct ?? 0, 0, 'no message took a connection')
  assert.ok(r.samples > 0)
  assert.is(r.connectedSamples, 0, `the submitter held a connection to the provider in ${r.connectedSamples}/${r.samples} samples`)
  const st = await submitter.api.call<{ overlay: { taskEnvelopes: Record<string, any> } }>('GET', '/v1/status')
  process.stdout.write(`overlay job: ${tasks} tasks, route shares ${JSON.stringify(shares)}, via ${(route.relays ?? []).map(v => relays.find(x => x.peerId === v)?.spec.name).join(', ')}; uses ${JSON.stringify(route.uses)}; submitter envelopes ${JSON.stringify(st.overlay.taskEnvelopes)}\n`)
})

test('a task with a 1 MiB input crosses the overlay in chunks', async () => {
  const dir = join(net.root, 'job-big')
  mkdirSync(dir, { recursive: true })
  const n = 131_072 // doubles: 1 MiB
  const data = Buffer.alloc(8 * n)
  let sum = 0
  for (let i = 0; i < n; i++) { const v = i % 16; data.writeDoubleLE(v, i * 8); sum += v * v }
  writeFileSync(join(dir, 'big.bin'), data)
  const before = await submitter.api.call<{ overlay: { taskEnvelopes: { chunksSent: number } } }>('GET', '/v1/status')
  const manifest = {
    name: 'one-mib-over-the-overlay',
    executor: 'wasm',
    code: { wasm: join(repoRoot, 'src/compute/modules/square.wasm') },
    entry: 'sumSquares',
    inputs: { files: { path: 'big.bin', chunkBytes: 8 * n } },
    verification: { mode: 'off' },
    routing: 'overlay',
    task: { timeoutMs: 60_000, expectedMs: 50, maxAttempts: 4 }
  }
  const r = await runJob(manifest, dir)
  assert.is(r.status.status, 'finished', JSON.stringify(r.status).slice(0, 2000))
  const { results } = await submitter.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${r.jobId}/results`)
  assert.is(results.length, 1)
  assert.is(Buffer.from(results[0].output, 'base64').readDoubleLE(0), sum)
  const after = await submitter.api.call<{ overlay: { taskEnvelopes: { chunksSent: number } } }>('GET', '/v1/status')
  const chunks = after.overlay.taskEnvelopes.chunksSent - before.overlay.taskEnvelopes.chunksSent
  assert.ok(chunks >= 6, `1 MiB of input (and the module) went as ${chunks} chunks`)
  assert.is(r.connectedSamples, 0)
  process.stdout.write(`1 MiB task over the overlay: ${chunks} chunk sends (offer, lease, task, voucher messages included)\n`)
})

test.run()
