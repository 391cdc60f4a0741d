// A grid job over real peer processes on 127.0.0.1: one submitter, N providers, a job of
// `tasks` square tasks whose every result is checked; optionally kill -9 a share of the
// providers mid-job. Shared by the quick test (npm test) and the long one (npm run test:long).
import * as assert from 'uvu/assert'
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'
import { recordsJobManifest } from '../helpers/manifest.js'

export interface GridScenario { providers: number, tasks: number, killShare: number, redundancy?: number }
/** A submitter and its providers, all connected; `net.stop()` ends them. */
export interface Grid { net: LocalNetwork, submitter: LocalNode, providers: LocalNode[] }

/** A fresh network, one job on it, then the network stopped. */
export async function runGridScenario (s: GridScenario): Promise<{ elapsedMs: number, summary: Record<string, any> }> {
  const net = new LocalNetwork()
  try {
    return await runGridJob(await startGrid(net, s.providers), s)
  } finally {
    await net.stop()
  }
}

/** Starts a submitter and `count` providers on `net` and waits until the submitter is connected to each. */
export async function startGrid (net: LocalNetwork, count: number): Promise<Grid> {
  const submitter = await net.start({ name: 'submitter', location: '35.68,139.69', extra: ['--no-connection-monitor'] })
  const boot = submitter.addrs[0]
  // start providers two at a time: many tsx start-ups at once starve a 2-core machine
  const providers = []
  for (let i = 0; i < count; i += 2) {
    providers.push(...await Promise.all(Array.from({ length: Math.min(2, count - i) }, async (_, j) =>
      await net.start({ name: `p${i + j}`, location: '35.68,139.69', extra: ['--no-connection-monitor'] }, [boot]))))
  }
  // wait until the submitter is connected to every provider
  const deadline = Date.now() + 30_000
  for (;;) {
    const { peers } = await submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
    if (providers.every(p => peers.some(x => x.peerId === p.peerId))) break
    if (Date.now() > deadline) throw new Error('providers did not all connect to the submitter')
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return { net, submitter, providers }
}

/**
 * Runs one job of `s.tasks` squares on a started grid (s.providers: how many of its providers
 * the kill share counts) and checks every result; with a kill share, kill -9 of that share of
 * the providers (ones the job uses) once a fifth of the tasks are done.
 */
export async function runGridJob (grid: Grid, s: GridScenario): Promise<{ elapsedMs: number, summary: Record<string, any> }> {
  const { net, submitter } = grid
  // providers killed by an earlier job on this grid take no part
  const providers = grid.providers.filter(p => p.process.exitCode === null && p.process.signalCode === null)
  const dir = join(net.root, `job-${Date.now()}`)
  mkdirSync(dir, { recursive: true })
  const data = Buffer.alloc(8 * s.tasks)
  for (let i = 0; i < s.tasks; i++) data.writeDoubleLE(i * 0.5 + 1, i * 8)
  writeFileSync(join(dir, 'data.bin'), data)
  const manifest = recordsJobManifest('squares', 'square', 'data.bin', {
    verification: { redundancy: s.redundancy ?? 1 },
    task: { timeoutMs: 20_000, expectedMs: 5, maxAttempts: 6 }
  })
  const t0 = Date.now()
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir })
  let killed = false
  let status: Record<string, any> = {}
  // follow the job's events; a stream that ends early (a loaded machine) is opened again
  for (let attempt = 0; status.status === undefined || status.status === 'running'; attempt++) {
    if (attempt > 0) {
      status = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`)
      if (status.status !== 'running') break
      if (attempt > 20) throw new Error(`the job's event stream keeps ending while it runs: ${JSON.stringify(status)}`)
    }
    for await (const ev of submitter.api.stream<Record<string, any>>('GET', `/v1/jobs/${jobId}/events`)) {
      if (ev.type === 'end') { status = ev.status; break }
      if (!killed && s.killShare > 0 && (ev.progress?.done ?? 0) >= s.tasks * 0.2) {
        killed = true
        // kill providers the job is using (placement may lease only the best few)
        const used: string[] = []
        for (let t = 0; t < Math.min(s.tasks, 8) && used.length < s.providers; t++) {
          const e = await submitter.api.call<{ task?: { copies: Array<{ provider: string }> } }>('GET', `/v1/jobs/${jobId}/explain?task=${t}`)
          for (const c of e.task?.copies ?? []) if (!used.includes(c.provider)) used.push(c.provider)
        }
        const order = [...providers].sort((a, b) => (used.includes(a.peerId) ? 0 : 1) - (used.includes(b.peerId) ? 0 : 1))
        const n = Math.round(s.providers * s.killShare)
        for (const p of order.slice(0, n)) p.process.kill('SIGKILL')
      }
    }
  }
  const elapsedMs = Date.now() - t0
  if (status.status !== 'finished') {
    const why = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}/explain?task=0`)
    assert.unreachable(`job ${String(status.status)}: task 0: ${JSON.stringify(why.task)} placement: ${JSON.stringify(why.placement)}`)
  }
  if (s.killShare > 0) assert.ok(killed, 'the job finished before providers could be killed')
  const { results } = await submitter.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${jobId}/results`)
  assert.is(results.length, s.tasks)
  const seen = new Set<number>()
  for (const r of results) {
    assert.not.ok(seen.has(r.index), `task ${r.index} has two accepted results`)
    seen.add(r.index)
    const x = r.index * 0.5 + 1
    assert.is(Buffer.from(r.output, 'base64').readDoubleLE(0), x * x, `task ${r.index}`)
  }
  // an honest submitter breaks no provider's protocol (leases name their offers, tasks their leases): none charged it
  for (const p of providers) {
    if (p.process.exitCode !== null || p.process.signalCode !== null) continue
    const st = await p.api.call<{ penalizedPeers: Array<{ peer: string }> }>('GET', '/v1/status')
    assert.equal(st.penalizedPeers.filter(x => x.peer === submitter.peerId), [], `provider ${p.spec.name} charged the honest submitter`)
  }
  return { elapsedMs, summary: status.summary ?? {} }
}
