// `bench grid`'s end-to-end rows: dispatch as users get it. A submitter daemon and four provider
// daemons, each its own OS process (demo/network.ts, as tests start them), talk over libp2p on
// 127.0.0.1; a job of tiny wasm tasks (square.wasm, 8-byte inputs) goes in through the control
// API with the verification the defaults give (no verification section), and its tasks/s and
// copies/s are set against the executor alone: the same tasks run by a ComputePeer in this
// process with every slot busy, measured in the same run. DBC_BENCH_GRID_PROFILE=DIR writes a
// V8 CPU profile of every daemon to DIR (NODE_OPTIONS=--cpu-prof, written when a daemon exits).
// DBC_BENCH_GRID_PERF=DIR records the timed job's on-CPU samples of each daemon with Linux perf
// (DIR/<name>.data; JIT frames named through --perf-basic-prof): time a loaded box steals or an
// fsync blocks shows in a V8 profile, not here.
import { mkdirSync, writeFileSync, readFileSync, readdirSync } from 'node:fs'
import { spawn, type ChildProcess } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { LocalNetwork, repoRoot, type LocalNode } from '../demo/network.js'
import { ComputePeer } from '../src/compute/index.js'
import { createRng } from '../src/core/rng.js'

export interface EndToEnd {
  tasks: number
  ms: number
  copies: number
  providersUsed: number
  /** Copies the submitter paid for (copies - billed: cancelled twins, outvoted or lost copies). */
  billedCopies: number
  /** Copies of the timed job that left several to a frame (TaskBundle), and those frames (the job summary's `bundles`; 0 / 0: none). */
  bundledCopies: number
  bundleFrames: number
  /** What the job's placement chose and the lease refusals it met (why a provider got no copies). */
  placement?: unknown
  refusals?: unknown
  /**
   * Review F6: ok copies the providers counted delivered (their payment gates' ledgers, both jobs)
   * minus the copies the submitter billed, and the work still unsigned at the providers after the
   * final vouchers (smallest units): copies that finished as their cancel arrived, never paid.
   */
  surplusDeliveries?: number
  unsignedAtProvidersUnits?: string
  executorTasksPerS: number
  /** The executor alone running the same tasks in bundles of 16 (ComputePeer.runBundle, as the providers run a TaskBundle): a second reference. */
  executorBundledTasksPerS: number
  executorSlots: number
  startMs: number
  /** CPU ms per task the timed job cost the submitter daemon and the providers together (from /proc). */
  submitterCpuMsPerTask: number
  /**
   * Of it, the submitter's main threads (each process's thread whose id is its pid: the event loop
   * that dispatches, records and pays); the rest ran on libuv's thread pool (fsync, off-thread
   * signature checks), V8's compiler and GC threads.
   */
  submitterMainThreadCpuMsPerTask: number
  providersCpuMsPerTask: number
  /** The same CPU by thread name (main = each process's event loop; node's workers, libuv-worker, V8 threads), ms per task. */
  threadCpuMsPerTask?: { submitter: Record<string, number>, providers: Record<string, number> }
  /** The daemons' CPU while idle between jobs (ms of CPU per wall second, all five together): heartbeats, timers. */
  idleCpuMsPerS: number
  /** Load average (1 min) just before and after the timed job. */
  loadBefore: number
  loadAfter: number
  /** CPU ms per task of the executor alone (this process and its workers). */
  executorCpuMsPerTask: number
  /** Jobs that failed before one finished (a flake of the job machine under load: reported, not hidden). */
  failedJobs: string[]
  profileDir?: string
  /** With a profile: the timed job's start and end (us, the monotonic clock of V8's profiles). */
  jobWindowUs?: number[]
}

const square = join(repoRoot, 'src/compute/modules/square.wasm')

/**
 * CPU time (user + system, ms) of a process and its descendants, from /proc (Linux; 0 elsewhere):
 * what a daemon spent, which a loaded machine's wall clock does not show (node's npm shim runs the
 * daemon as a child, so the tree is summed).
 */
export function treeCpuMs (pid: number | undefined): number {
  return procTree(pid).reduce((a, p) => a + p.ticks * 10, 0)
}

/** CPU time (ms) of the main thread of a process and of each descendant (/proc/PID/task/PID: the event loop, not its pools). */
export function treeMainThreadCpuMs (pid: number | undefined): number {
  return treePids(pid).reduce((a, p) => {
    try {
      const st = readFileSync(`/proc/${p}/task/${p}/stat`, 'utf8')
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
      return a + (Number(f[11]) + Number(f[12])) * 10
    } catch { return a }
  }, 0)
}

/** CPU time (ms) of every thread of a process and its descendants, by thread name (/proc/PID/task/TID/comm). */
export function treeThreadCpuMs (pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>()
  for (const p of treePids(pid)) {
    let tids: string[] = []
    try { tids = readdirSync(`/proc/${p}/task`) } catch {}
    for (const t of tids) {
      try {
        const st = readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8')
        const name = t === String(p) ? 'main' : st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
        out.set(`${p}/${t}/${name}`, (Number(f[11]) + Number(f[12])) * 10)
      } catch {}
    }
  }
  return out
}

/** Per thread name, the CPU ms per task between two treeThreadCpuMs readings (summed over processes). */
function threadsPerTask (before: Array<Map<string, number>>, after: Array<Map<string, number>>, tasks: number): Record<string, number> {
  const by: Record<string, number> = {}
  after.forEach((m, i) => {
    for (const [k, v] of m) {
      const name = k.split('/').slice(2).join('/')
      by[name] = (by[name] ?? 0) + (v - (before[i].get(k) ?? 0)) / tasks
    }
  })
  return Object.fromEntries(Object.entries(by).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v * 1000) / 1000]))
}

/** The process ids of a process and its descendants (Linux). */
export function treePids (pid: number | undefined): number[] {
  return procTree(pid).map(p => p.pid)
}

function procTree (pid: number | undefined): Array<{ pid: number, ppid: number, ticks: number }> {
  if (pid === undefined) return []
  let procs: Array<{ pid: number, ppid: number, ticks: number }>
  try {
    procs = readdirSync('/proc').filter(d => /^[0-9]+$/.test(d)).flatMap(d => {
      try {
        const st = readFileSync(`/proc/${d}/stat`, 'utf8')
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
        return [{ pid: Number(d), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) }]
      } catch { return [] }
    })
  } catch { return [] }
  const tree = new Set([pid])
  for (let grew = true; grew;) {
    grew = false
    for (const p of procs) if (!tree.has(p.pid) && tree.has(p.ppid)) { tree.add(p.pid); grew = true }
  }
  // (ticks: USER_HZ is 100 on Linux)
  return procs.filter(p => tree.has(p.pid))
}

function writeJob (dir: string, tasks: number, salt: number): Record<string, unknown> {
  const data = Buffer.alloc(8 * tasks)
  for (let i = 0; i < tasks; i++) data.writeDoubleLE(i + salt, i * 8)
  writeFileSync(join(dir, `data-${salt}.bin`), data)
  // no verification section: what a new user gets
  return { name: `bench-squares-${salt}`, executor: 'wasm', code: { wasm: square }, entry: 'run', inputs: { files: { path: `data-${salt}.bin`, chunkBytes: 8 } }, task: { timeoutMs: 20_000, expectedMs: 1 } }
}

/** Submits a job and waits for its end; checks every result. */
async function runJob (sub: LocalNode, dir: string, tasks: number, salt: number): Promise<{ ms: number, copies: number, providersUsed: number, billedCopies: number, bundles?: { copies: number, frames: number }, placement?: unknown, refusals?: unknown }> {
  const manifest = writeJob(dir, tasks, salt)
  const t0 = performance.now()
  const { jobId } = await sub.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 30_000 })
  // followed as `dbc job submit --wait` does (the job's event stream; polling the status every
  // 20 ms instead cost the submitter ~15% of its CPU in the first profile)
  let status: Record<string, any> = {}
  for await (const ev of sub.api.stream<Record<string, any>>('GET', `/v1/jobs/${jobId}/events`)) {
    if (ev.type === 'end') { status = ev.status; break }
  }
  const ms = performance.now() - t0
  // the stream ended without its last event: ask
  if (status.status === undefined || status.summary === undefined) status = await sub.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 })
  if (status.status !== 'finished') {
    const index = Number(status.summary?.failures?.[0]?.index ?? 0)
    const why = await sub.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}/explain?task=${index}`, undefined, { timeoutMs: 30_000 }).catch((err: Error): Record<string, any> => ({ error: err.message }))
    throw new Error(`bench job ended ${String(status.status)}: ${JSON.stringify(status.summary?.failures?.slice(0, 3))}; task ${index}: ${JSON.stringify(why.task ?? why.error).slice(0, 3000)}`)
  }
  const { results } = await sub.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${jobId}/results`, undefined, { timeoutMs: 30_000 })
  if (results.length !== tasks) throw new Error(`bench job: ${results.length} results for ${tasks} tasks`)
  for (const r of results) {
    const x = r.index + salt
    if (Buffer.from(r.output, 'base64').readDoubleLE(0) !== x * x) throw new Error(`bench job: task ${r.index} has a wrong result`)
  }
  return { ms, copies: Number(status.summary?.copies ?? 0), providersUsed: Number(status.summary?.providersUsed ?? 0), billedCopies: Number(status.summary?.billedCopies ?? 0), bundles: status.summary?.bundles, placement: status.summary?.placement, refusals: status.summary?.refusals }
}

/** The same tiny tasks through the executor stack alone (ComputePeer: slots, worker, receipt), all slots busy. */
async function executorRate (tasks: number): Promise<{ tasksPerS: number, bundledTasksPerS: number, slots: number, cpuMsPerTask: number }> {
  const code = new Uint8Array(readFileSync(square))
  const slots = Math.max(2, cpus().length)
  const peer = new ComputePeer({ secretKey: createRng(7).bytes(new Uint8Array(32)), cpuSlots: slots, benchmark: false, nvidiaSmi: '/nonexistent/nvidia-smi' })
  await peer.start()
  try {
    let id = 0
    const one = async (): Promise<void> => {
      const i = id++
      const input = new Uint8Array(new Float64Array([i]).buffer)
      const r = await peer.runTask({ taskId: new Uint8Array([i & 255, (i >> 8) & 255, (i >> 16) & 255, 1]), code, entry: 'run', input, deadlineMs: 20_000, memoryLimitMib: 16 })
      if (r.result.ok !== true) throw new Error(`executor: ${r.result.error ?? ''}`)
    }
    for (let i = 0; i < 200; i++) await one() // warm workers, module cache, JIT
    let started = 0
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    await Promise.all(Array.from({ length: slots * 4 }, async () => { while (started < tasks) { started++; await one() } }))
    const cpu = process.cpuUsage(cpu0)
    const tasksPerS = tasks / ((performance.now() - t0) / 1000)
    // the same tasks in bundles of 16 (ComputePeer.runBundle: what a provider runs for a TaskBundle,
    // one worker message each way): the executor alone as the e2e providers run it
    const bundle = async (): Promise<void> => {
      const n = Math.min(16, tasks - started)
      started += n
      const outs = await peer.runBundle(Array.from({ length: n }, () => { const i = id++; return { taskId: new Uint8Array([i & 255, (i >> 8) & 255, (i >> 16) & 255, 2]), executor: 'wasm', code, entry: 'run', input: new Uint8Array(new Float64Array([i]).buffer), deadlineMs: 20_000, memoryLimitMib: 16 } }), { cutMs: 1000 })
      if (outs.some(o => 'refused' in o || o.result.ok !== true)) throw new Error('executor: a bundled task failed')
    }
    started = 0
    for (let i = 0; i < 20; i++) await bundle() // warm this path too
    started = 0
    const b0 = performance.now()
    await Promise.all(Array.from({ length: slots * 4 }, async () => { while (started < tasks) await bundle() }))
    return { tasksPerS, bundledTasksPerS: tasks / ((performance.now() - b0) / 1000), slots, cpuMsPerTask: (cpu.user + cpu.system) / 1000 / tasks }
  } finally { await peer.stop() }
}

export async function endToEnd (opts: { tasks: number, providers?: number }): Promise<EndToEnd> {
  const profileDir = process.env.DBC_BENCH_GRID_PROFILE
  const perfDir = process.env.DBC_BENCH_GRID_PERF
  const saved = process.env.NODE_OPTIONS
  if (profileDir !== undefined) {
    mkdirSync(profileDir, { recursive: true })
    process.env.NODE_OPTIONS = `${saved ?? ''} --cpu-prof --cpu-prof-dir=${profileDir}`.trim()
  }
  if (perfDir !== undefined) {
    mkdirSync(perfDir, { recursive: true })
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --perf-basic-prof`.trim()
  }
  const net = new LocalNetwork()
  try {
    const t0 = performance.now()
    const sub = await net.start({ name: 'submitter', location: '52.52,13.40', extra: ['--no-connection-monitor'] }, [], { timeoutMs: 300_000 })
    const n = opts.providers ?? 4
    const providers = await Promise.all(Array.from({ length: n }, async (_, i) => await net.start({ name: `p${i}`, location: '52.52,13.40', extra: ['--no-connection-monitor'] }, [sub.addrs[0]], { timeoutMs: 300_000 })))
    const deadline = Date.now() + 60_000
    for (;;) {
      const { peers } = await sub.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
      if (providers.every(p => peers.some(x => x.peerId === p.peerId))) break
      if (Date.now() > deadline) throw new Error('the providers did not connect to the submitter')
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    const startMs = performance.now() - t0
    const dir = join(net.root, 'job')
    mkdirSync(dir, { recursive: true })
    const failedJobs: string[] = []
    // a job that fails is noted and run again (at most 3 tries each): the row measures a finished job
    const finished = async (tasks: number, salt: number): Promise<Awaited<ReturnType<typeof runJob>>> => {
      for (let k = 0; ; k++) {
        try { return await runJob(sub, dir, tasks, salt + k * 1_000_000) } catch (err) {
          // what the nodes say of each other: a provider that penalised the submitter, a lost connection
          const seen = await Promise.all(net.nodes.map(async n => {
            const st = await n.api.call<Record<string, any>>('GET', '/v1/status', undefined, { timeoutMs: 10_000 }).catch((e: Error): Record<string, any> => ({ error: e.message }))
            const bad = net.logOf(n).split('\n').filter(l => l.includes('bad input')).slice(0, 3).map(l => l.slice(0, 400))
            return `${n.spec.name}: ${bad.length > 0 ? `bad input ${bad.join(' / ')}, ` : ''}peers ${String(st.peers?.length ?? st.peerCount ?? '?')}, penalised ${JSON.stringify((st.penalizedPeers ?? []).map((x: { peer: string, score?: number }) => `${x.peer.slice(-6)}:${String(x.score)}`))}`
          }))
          failedJobs.push(`${tasks} tasks: ${(err as Error).message.slice(0, 1500)} [${seen.join('; ')}]`)
          console.error(failedJobs[failedJobs.length - 1])
          if (k === 2) throw err
        }
      }
    }
    // warm-up: JIT, module caches, connections (DBC_BENCH_GRID_WARMUP tasks, default 200: the daemons' JIT
    // is still compiling in the timed job after 200; a longer warm-up shows the steady state)
    const warm = await finished(Number(process.env.DBC_BENCH_GRID_WARMUP ?? 200), 100_000)
    // what the five daemons burn with no job (heartbeats, timers, DHT upkeep): a per-second cost
    // that a slower (loaded) job charges to more seconds, so the CPU-per-task rows are also given net of it
    const idle0 = net.nodes.map(n => treeCpuMs(n.process.pid)); const idleT0 = performance.now()
    await new Promise(resolve => setTimeout(resolve, 5000))
    const idleCpuMsPerS = net.nodes.reduce((a, n, i) => a + treeCpuMs(n.process.pid) - idle0[i], 0) / ((performance.now() - idleT0) / 1000)
    const loadBefore = loadavg()[0]
    const cpu0 = net.nodes.map(n => treeCpuMs(n.process.pid))
    const main0 = treeMainThreadCpuMs(sub.process.pid)
    const threads0 = net.nodes.map(n => treeThreadCpuMs(n.process.pid))
    // the timed job's window on the monotonic clock V8 profiles use (to read only its samples)
    const window0 = Number(process.hrtime.bigint() / 1000n)
    const perf: ChildProcess[] = perfDir === undefined ? [] : net.nodes.map(n => spawn('perf', ['record', '-F', '997', '-g', '-p', String(n.process.pid), '-o', join(perfDir, `${n.spec.name}.data`)], { stdio: 'ignore' }))
    // DBC_BENCH_GRID_STRACE=DIR: each daemon's system calls in the timed job, counted (strace -c: commits, writes per task)
    const straceDir = process.env.DBC_BENCH_GRID_STRACE
    if (straceDir !== undefined) mkdirSync(straceDir, { recursive: true })
    const traced: ChildProcess[] = straceDir === undefined ? [] : net.nodes.map(n => spawn('strace', ['-c', '-f', ...treePids(n.process.pid).flatMap(p => ['-p', String(p)]), '-o', join(straceDir, `${n.spec.name}.txt`)], { stdio: 'ignore' }))
    if (traced.length > 0) await new Promise(resolve => setTimeout(resolve, 1000))
    const job = await finished(opts.tasks, 1)
    const jobWindowUs = [window0, Number(process.hrtime.bigint() / 1000n)]
    const cpu = net.nodes.map((n, i) => treeCpuMs(n.process.pid) - cpu0[i])
    const subMain = treeMainThreadCpuMs(sub.process.pid) - main0
    const threads1 = net.nodes.map(n => treeThreadCpuMs(n.process.pid))
    const threadCpuMsPerTask = { submitter: threadsPerTask(threads0.slice(0, 1), threads1.slice(0, 1), opts.tasks), providers: threadsPerTask(threads0.slice(1), threads1.slice(1), opts.tasks) }
    const loadAfter = loadavg()[0]
    // F6: what the providers count delivered against what was billed (the final vouchers first)
    await new Promise(resolve => setTimeout(resolve, 2000))
    const ledgers = await Promise.all(providers.map(async p => await p.api.call<{ compute?: { payments?: Array<{ tasks: number, behind: string }> } }>('GET', '/v1/status', undefined, { timeoutMs: 30_000 }).catch(() => ({ compute: undefined }))))
    const rows = ledgers.flatMap(l => l.compute?.payments ?? [])
    const surplusDeliveries = rows.reduce((a, r) => a + r.tasks, 0) - warm.billedCopies - job.billedCopies
    const units = (coins: string): bigint => { const [i, f = ''] = coins.split(' ')[0].split('.'); return BigInt(i) * 10n ** 18n + BigInt((f + '0'.repeat(18)).slice(0, 18)) }
    const unsignedAtProvidersUnits = rows.reduce((a, r) => a + units(r.behind), 0n).toString()
    // (no perf on this machine: the row runs without samples)
    await Promise.all([...perf, ...traced].map(async p => { const exited = new Promise(resolve => { p.once('exit', resolve); p.once('error', resolve) }); if (p.exitCode === null) p.kill('SIGINT'); await exited }))
    // SIGTERM and a long grace, so a profiled daemon writes its profile as it exits
    await Promise.all(net.nodes.map(async n => {
      if (n.process.exitCode !== null) return
      const exited = new Promise<void>(resolve => n.process.once('exit', () => { resolve() }))
      n.process.kill('SIGTERM')
      await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 120_000))])
    }))
    await net.stop()
    // the executor's rate with the daemons gone: the machine is the same, nothing else runs
    const ex = await executorRate(opts.tasks)
    return { tasks: opts.tasks, ms: job.ms, copies: job.copies, providersUsed: job.providersUsed, billedCopies: job.billedCopies, bundledCopies: Number(job.bundles?.copies ?? 0), bundleFrames: Number(job.bundles?.frames ?? 0), placement: job.placement, refusals: job.refusals, surplusDeliveries, unsignedAtProvidersUnits, executorTasksPerS: ex.tasksPerS, executorBundledTasksPerS: ex.bundledTasksPerS, executorSlots: ex.slots, startMs, submitterCpuMsPerTask: cpu[0] / opts.tasks, submitterMainThreadCpuMsPerTask: subMain / opts.tasks, providersCpuMsPerTask: cpu.slice(1).reduce((a, b) => a + b, 0) / opts.tasks, executorCpuMsPerTask: ex.cpuMsPerTask, threadCpuMsPerTask, idleCpuMsPerS, loadBefore, loadAfter, failedJobs, ...(profileDir !== undefined ? { profileDir, jobWindowUs } : {}) }
  } finally {
    await net.stop()
    if (profileDir !== undefined || perfDir !== undefined) { if (saved === undefined) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = saved }
  }
}

// `npx tsx bench/grid-e2e.ts [TASKS]`: this row alone (profiling: DBC_BENCH_GRID_PROFILE=DIR)
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await endToEnd({ tasks: Number(process.argv[2] ?? 1000) })
  console.log(JSON.stringify({ ...r, tasksPerS: r.tasks / (r.ms / 1000), copiesPerS: r.copies / (r.ms / 1000), ratio: (r.tasks / (r.ms / 1000)) / r.executorTasksPerS, ratioBundled: (r.tasks / (r.ms / 1000)) / r.executorBundledTasksPerS }, null, 2))
  process.exit(0)
}
