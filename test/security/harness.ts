// Shared pieces of the security suite (test/security/*.test.ts) and of the attack benchmarks:
// a target daemon (the node under attack, which is also an honest grid-job submitter) with a few
// honest provider daemons, all real `dbc node start` processes on 127.0.0.1 (demo/network.ts);
// honest jobs checked result by result; throw-away hostile libp2p identities that write raw
// bytes on any protocol; and readings of the target (penalties, RSS, status latency).
// Nothing here asserts on timing: callers assert on outcomes and bounds.
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { newIdentity, rssKiB, type FuzzIdentity } from '../fuzz/live-fuzzer.js'

export { rssKiB, type FuzzIdentity as HostileIdentity }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export interface SecurityNet {
  net: LocalNetwork
  /** The daemon under attack; it also submits the honest jobs (its providers run them). */
  target: LocalNode
  providers: LocalNode[]
  /** The target's first listen address, with its peer id (what an attacker dials). */
  addr: string
  stop: () => Promise<void>
}

export interface SecurityNetOptions {
  /** Honest provider daemons connected to the target (default 2). */
  providers?: number
  /** Extra `dbc node start` arguments for the target / for each provider. */
  targetArgs?: string[]
  providerArgs?: string[]
  /** Another LocalNetwork class (e.g. an older checkout's demo/network.ts, to measure the daemon before a change). */
  Network?: new () => LocalNetwork
  /** Called with each node's log tail when start-up fails. */
  log?: (s: string) => void
}

/** Starts the target and its providers and waits until every provider is connected to the target. */
export async function startSecurityNet (opts: SecurityNetOptions = {}): Promise<SecurityNet> {
  const net = new (opts.Network ?? LocalNetwork)()
  const base = ['--no-connection-monitor']
  try {
    const target = await net.start({ name: 'target', location: '35.68,139.69', extra: [...base, ...(opts.targetArgs ?? [])] })
    const boot = target.addrs[0]
    const providers = await Promise.all(Array.from({ length: opts.providers ?? 2 }, async (_, i) =>
      await net.start({ name: `p${i}`, location: '35.68,139.69', extra: [...base, ...(opts.providerArgs ?? [])] }, [boot])))
    const deadline = Date.now() + 60_000
    for (;;) {
      const { peers } = await target.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
      if (providers.every(p => peers.some(x => x.peerId === p.peerId))) break
      if (Date.now() > deadline) throw new Error('providers did not connect to the target')
      await sleep(200)
    }
    return { net, target, providers, addr: boot, stop: async () => { await net.stop() } }
  } catch (err) {
    for (const n of net.nodes) opts.log?.(`--- ${n.spec.name} log tail ---\n${net.logOf(n).slice(-3000)}`)
    await net.stop()
    throw err
  }
}

/**
 * Writes the input of a squares job (task i squares i + salt) into `dir` and returns its manifest
 * (square.wasm, one 8-byte chunk a task): the honest job of the security and fuzz scenarios.
 */
export function writeSquaresJob (dir: string, tasks: number, salt: number, name: string): Record<string, unknown> {
  const data = Buffer.alloc(8 * tasks)
  for (let i = 0; i < tasks; i++) data.writeDoubleLE(i + salt, i * 8)
  writeFileSync(join(dir, 'data.bin'), data)
  return {
    name,
    executor: 'wasm',
    code: { wasm: join(repoRoot, 'src/compute/modules/square.wasm') },
    entry: 'run',
    inputs: { files: { path: 'data.bin', chunkBytes: 8 } },
    // one copy per task, as before the default checks: this job measures availability under attack
    // with 2 providers, and a check needs a second provider that an attack may have knocked out
    verification: { mode: 'off' },
    task: { timeoutMs: 20_000, expectedMs: 5, maxAttempts: 6 }
  }
}

/**
 * Submits a grid job of `tasks` squares (src/compute/modules/square.wasm) on `submitter` and
 * waits for its end; asserts it finished and that every result is the right square, once.
 */
export async function runHonestJob (submitter: LocalNode, opts: { tasks: number, salt: number, timeoutMs?: number }): Promise<{ tasks: number, ms: number }> {
  const t0 = performance.now()
  const dir = join(submitter.dataDir, '..', `honest-job-${opts.salt}`)
  mkdirSync(dir, { recursive: true })
  const manifest = writeSquaresJob(dir, opts.tasks, opts.salt, `honest-squares-${opts.salt}`)
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 30_000 })
  // poll rather than follow the event stream: a node under attack may be slow, never wrong
  const end = Date.now() + (opts.timeoutMs ?? 180_000)
  let status: Record<string, any>
  for (;;) {
    status = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 })
    if (status.status !== 'running' && status.status !== 'pending' && status.status !== 'queued') break
    if (Date.now() > end) break
    await sleep(200)
  }
  assert.is(status.status, 'finished', `honest job ${jobId} ended ${String(status.status)}`)
  const { results } = await submitter.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${jobId}/results`, undefined, { timeoutMs: 30_000 })
  assert.is(results.length, opts.tasks, `honest job ${jobId}: ${results.length} results for ${opts.tasks} tasks`)
  const seen = new Set<number>()
  for (const r of results) {
    assert.not.ok(seen.has(r.index), `honest job ${jobId}: task ${r.index} has two accepted results`)
    seen.add(r.index)
    const x = r.index + opts.salt
    assert.is(Buffer.from(r.output, 'base64').readDoubleLE(0), x * x, `honest job ${jobId} task ${r.index}`)
  }
  return { tasks: opts.tasks, ms: performance.now() - t0 }
}

export interface HonestRun<T> { value: T, jobs: number, tasksChecked: number, jobMs: number[], failure?: Error }

/**
 * Runs `fn` (the attack) while honest jobs of `tasks` tasks run back to back on `submitter`;
 * after `fn` ends the current job is awaited, and at least one job always completes. A failed
 * job aborts `fn`'s signal and is rethrown once `fn` has returned (or, with `rethrow: false`,
 * returned as `failure` beside what was counted).
 */
export async function withHonestJobs<T> (submitter: LocalNode, opts: { tasks: number, salt?: number, rethrow?: boolean }, fn: (signal: AbortSignal) => Promise<T>): Promise<HonestRun<T>> {
  const ac = new AbortController()
  let attackDone = false
  const run: Omit<HonestRun<T>, 'value'> = { jobs: 0, tasksChecked: 0, jobMs: [] }
  const loop = (async () => {
    while (!attackDone || run.jobs === 0) {
      const r = await runHonestJob(submitter, { tasks: opts.tasks, salt: (opts.salt ?? 5000) + run.jobs * opts.tasks })
      run.jobs++
      run.tasksChecked += r.tasks
      run.jobMs.push(r.ms)
    }
  })()
  loop.catch(() => { ac.abort(new Error('an honest job failed')) })
  let value: T
  try {
    value = await fn(ac.signal)
  } finally {
    attackDone = true
  }
  try {
    await loop
  } catch (err) {
    if (opts.rethrow ?? true) throw err
    return { value, ...run, failure: err as Error }
  }
  return { value, ...run }
}

/** A throw-away hostile identity: its own libp2p host (test/fuzz/live-fuzzer.ts newIdentity). */
export const hostileIdentity = newIdentity

/** Opens `protocol` on the target as `id`, raw: no framing, nothing sent yet. Throws when refused. */
export async function openRaw (id: FuzzIdentity, targetAddr: string, protocol: string, timeoutMs = 10_000): Promise<Stream> {
  return await id.host.dialProtocol(multiaddr(targetAddr), protocol, { signal: AbortSignal.timeout(timeoutMs) })
}

/** Writes bytes on a raw stream, honouring backpressure; false when the stream was reset or closed. */
export async function writeRaw (stream: Stream, bytes: Uint8Array, timeoutMs = 10_000): Promise<boolean> {
  try {
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') return false
    if (!stream.send(bytes)) await stream.onDrain({ signal: AbortSignal.timeout(timeoutMs) })
    return true
  } catch {
    return false
  }
}

export interface Penalties {
  /** Every peer the target lists with a negative score (node-wide book and the overlay's). */
  peers: Map<string, number>
  /** Peers at or below the ban threshold (or flagged banned by the overlay). */
  banned: Set<string>
}

/** What the target's GET /v1/status says about penalised peers now. */
export async function penalties (target: LocalNode): Promise<Penalties> {
  const st = await target.api.call<Record<string, any>>('GET', '/v1/status', undefined, { timeoutMs: 30_000 })
  const out: Penalties = { peers: new Map(), banned: new Set() }
  const lists = [...(st.penalizedPeers ?? []), ...(st.overlay?.penalizedPeers ?? [])] as Array<{ peer: string, score: number, banned?: boolean }>
  for (const p of lists) {
    out.peers.set(p.peer, Math.min(out.peers.get(p.peer) ?? 0, p.score))
    if (p.banned === true || p.score <= -100) out.banned.add(p.peer)
  }
  return out
}

/**
 * Collects penalties every `everyMs` while an attack runs (scores decay, and the overlay lists
 * only its most recent peers, so one look at the end can miss early identities).
 */
export function watchPenalties (target: LocalNode, everyMs = 1000): { seen: Penalties, poll: () => Promise<Penalties>, stop: () => void } {
  const seen: Penalties = { peers: new Map(), banned: new Set() }
  const poll = async (): Promise<Penalties> => {
    const p = await penalties(target)
    for (const [peer, s] of p.peers) seen.peers.set(peer, Math.min(seen.peers.get(peer) ?? 0, s))
    for (const b of p.banned) seen.banned.add(b)
    return p
  }
  const timer = setInterval(() => { poll().catch(() => {}) }, everyMs)
  timer.unref()
  return { seen, poll, stop: () => { clearInterval(timer) } }
}

/** Resident set size of a process in MiB. */
export async function rssMiB (pid: number): Promise<number> {
  return (await rssKiB(pid)) / 1024
}

/** Milliseconds the target takes to answer GET /v1/status (throws when it does not within `timeoutMs`). */
export async function statusLatency (target: LocalNode, timeoutMs = 30_000): Promise<number> {
  const t0 = performance.now()
  await target.api.call('GET', '/v1/status', undefined, { timeoutMs })
  return performance.now() - t0
}

export interface VitalSigns { statusMs: number[], maxStatusMs: number, statusFailures: number, rssMiB: number[], peakRssMiB: number }

/**
 * Samples the target's status latency and RSS every `everyMs` (one status call at a time; a
 * call that fails counts as a failure with the time it took) until stop() is called.
 */
export function sampleVitals (target: LocalNode, everyMs = 200): { stop: () => Promise<VitalSigns> } {
  const v: VitalSigns = { statusMs: [], maxStatusMs: 0, statusFailures: 0, rssMiB: [], peakRssMiB: 0 }
  const pid = target.process.pid as number
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now()
      try {
        v.rssMiB.push(await rssMiB(pid))
      } catch {}
      try {
        v.statusMs.push(await statusLatency(target, 10_000))
      } catch {
        v.statusFailures++
        v.statusMs.push(performance.now() - t0)
      }
      const left = everyMs - (performance.now() - t0)
      if (left > 0 && !stopped) await sleep(left)
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await loop
      v.maxStatusMs = Math.max(0, ...v.statusMs)
      v.peakRssMiB = Math.max(0, ...v.rssMiB)
      return v
    }
  }
}
