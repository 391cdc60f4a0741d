// The `process` executor: a shell command in a private task directory, isolated (../isolation): its own PID
// and mount namespace, run as an unprivileged user with no capabilities and rlimits, the node's data dir and
// the other tasks' directories hidden, a clean environment, and every process it started killed when it ends
// (a `setsid` escape included). Wall-time and output-size limits kill it. This is process isolation, not a VM:
// the task still shares the kernel and can read world-readable host files; it is off unless the provider
// policy enables it, and unavailable where isolation is (see isolationSupport()).
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { isolationSupport, spawnIsolated, type IsolatedProcess } from '../isolation/index.js'
import { cancelledError, executorError, ExecutorErrorCode, type Availability, type ExecutionRequest, type ExecutionResult, type Executor, type RunOptions } from './types.js'
import { TailBuffer, withTaskLog, logSnippet } from './output-tail.js'

export interface ProcessExecutorInit {
  /** Must be true for the executor to run anything (the provider policy's switch). */
  enabled?: boolean
  /** Where this executor's task directories go (a fresh private folder inside it). Default os.tmpdir(). */
  tmpDir?: string
  /** The node's data dir (identity key, stores): hidden from every task. */
  dataDir?: string
  /** More host paths no task may see. */
  hidePaths?: string[]
  /** Let tasks use the host's network. Default false: an empty network namespace (nothing to reach, not
   * even the daemon's API on 127.0.0.1). */
  network?: boolean
  /** PATH given to tasks. */
  path?: string
  shell?: string
}

/** Per-task rlimits. RLIMIT_NPROC counts every process of the task uid on the machine, so it is generous. */
const MAX_PROCESSES = 256
const MAX_OPEN_FILES = 256
const WORLD_WRITABLE = ['/tmp', '/var/tmp', '/dev/shm']

const CLK_TCK = 100 // USER_HZ on Linux; /proc/PID/stat times are in these ticks

/** utime + stime + cutime + cstime of a process and all its live descendants, in ms; undefined once it is gone. */
async function treeCpuMs (pid: number, depth = 0): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // after "pid (comm) ": state is field 3, utime is field 14 → index 11 here. A live process's time is in no
    // one's cutime yet, and a reaped one's is in its parent's, so the sum over the tree counts each once.
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
    let ms = Number.isFinite(ticks) ? ticks * 1000 / CLK_TCK : 0
    if (depth < 32) {
      const kids = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
      for (const k of kids.trim().split(/\s+/).filter(x => x !== '')) ms += await treeCpuMs(Number(k), depth + 1) ?? 0
    }
    return ms
  } catch {
    return undefined
  }
}

/** cutime + cstime of this process: CPU time of children it has reaped, in ms. */
async function reapedChildrenCpuMs (): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[13]) + Number(fields[14])
  return Number.isFinite(ticks) ? ticks * 1000 / CLK_TCK : 0
}

export class ProcessExecutor implements Executor {
  readonly name = 'process' as const
  private readonly enabled: boolean
  private readonly tmpDir: string
  private readonly path: string
  private readonly shell: string
  private readonly hidden: string[]
  private readonly network: boolean
  private readonly running = new Set<() => void>()
  private root?: Promise<string>

  constructor (init: ProcessExecutorInit = {}) {
    this.enabled = init.enabled ?? false
    this.tmpDir = init.tmpDir ?? tmpdir()
    this.path = init.path ?? '/usr/local/bin:/usr/bin:/bin'
    this.shell = init.shell ?? '/bin/sh'
    this.network = init.network ?? false
    // World-writable scratch dirs are covered too, so a task leaves nothing behind on the host (its TMPDIR is its own dir).
    // Not root, a task runs as the daemon's own user (in a user namespace): the operator's home
    // (keys, configs) is covered as well; as root it runs as uid 65534, which can not read it.
    const home = process.getuid?.() !== 0 ? homedir() : ''
    this.hidden = [...new Set([...(init.dataDir === undefined ? [] : [init.dataDir]), ...(init.hidePaths ?? []), ...WORLD_WRITABLE, this.tmpDir, ...(home.length > 1 ? [home] : [])])]
  }

  async availability (): Promise<Availability> {
    if (!this.enabled) return { available: false, reason: 'the process executor is off; enable it in the provider policy (executors: [..., "process"])' }
    const iso = isolationSupport()
    return iso.available ? { available: true } : { available: false, reason: `the process executor needs process isolation, which is unavailable: ${iso.reason ?? 'unknown reason'}` }
  }

  /** This executor's folder of task directories: hidden from every task, so no task sees another's files. */
  private async taskRoot (): Promise<string> {
    this.root ??= mkdtemp(join(this.tmpDir, 'dbc-process-'))
    return await this.root
  }

  async run (req: ExecutionRequest, opts: RunOptions = {}): Promise<ExecutionResult> {
    if (!this.enabled) throw executorError(ExecutorErrorCode.DISABLED, 'the process executor is disabled on this provider', 'use the wasm executor, or ask a provider that enables "process"')
    const iso = isolationSupport()
    if (!iso.available) throw executorError(ExecutorErrorCode.UNAVAILABLE, `the process executor cannot isolate tasks here: ${iso.reason ?? 'unknown reason'}`, 'use the wasm executor; the provider must run on Linux as root or with unprivileged user namespaces')
    if (opts.signal?.aborted === true) throw cancelledError(req.taskId, opts.signal)
    if (req.entry.trim() === '') throw executorError(ExecutorErrorCode.NO_ENTRY, 'a process task needs a command in its entry')
    const dir = await mkdtemp(join(await this.taskRoot(), 'task-'))
    try {
      if (req.code.length > 0) {
        await writeFile(join(dir, 'code'), req.code)
        await chmod(join(dir, 'code'), 0o755) // the task runs as another user; the directory is its alone
      }
      return await this.spawnIn(dir, req, opts)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  private async spawnIn (dir: string, req: ExecutionRequest, opts: RunOptions): Promise<ExecutionResult> {
    const started = performance.now()
    const alone = this.running.size === 0
    const reapedBefore = alone ? await reapedChildrenCpuMs() : 0
    // Only these variables: nothing of the provider's environment leaks into the task.
    // CUDA_VISIBLE_DEVICES limits the task to the GPUs its slot holds (empty: none at all).
    const env = { PATH: this.path, HOME: dir, TMPDIR: dir, PWD: dir, LANG: 'C.UTF-8', DBC_TASK_ID: req.taskId, CUDA_VISIBLE_DEVICES: (req.gpuIndexes ?? []).join(',') }
    const limits = {
      // CUDA reserves far more address space than it uses, so GPU tasks get no address-space limit.
      addressSpaceBytes: (req.gpuIndexes ?? []).length > 0 ? undefined : Math.max(64, req.memoryLimitMib) * 1024 * 1024,
      cpuSeconds: Math.ceil(req.timeoutMs / 1000) + 1,
      processes: MAX_PROCESSES,
      openFiles: MAX_OPEN_FILES
    }
    let iso: IsolatedProcess
    try {
      iso = spawnIsolated(this.shell, ['-c', req.entry], { cwd: dir, env, hidePaths: [...this.hidden, await this.taskRoot()], limits, noNetwork: !this.network, stdio: ['pipe', 'pipe', 'pipe'] })
    } catch (err) {
      throw executorError(ExecutorErrorCode.UNAVAILABLE, `task ${req.taskId} could not be started in isolation: ${(err as Error).message}`, undefined, err)
    }
    const child = iso.child as ChildProcessWithoutNullStreams // stdio is all pipes
    const chunks: Buffer[] = []
    let size = 0
    const stderr = new TailBuffer()
    let failure: Error | undefined
    let cpuMs = 0
    const killGroup = (why: Error): void => {
      failure ??= why
      void iso.kill()
    }
    const sampler = setInterval(() => { if (child.pid !== undefined) void treeCpuMs(child.pid).then(ms => { if (ms !== undefined) cpuMs = Math.max(cpuMs, ms) }) }, 50)
    const timer = setTimeout(() => killGroup(executorError(ExecutorErrorCode.TIMEOUT, `task ${req.taskId} ran past its wall-time limit of ${req.timeoutMs} ms and was stopped`, 'raise the task deadline')), req.timeoutMs)
    const onAbort = (): void => killGroup(cancelledError(req.taskId, opts.signal))
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    this.running.add(onAbort)
    child.stdout.on('data', (d: Buffer) => {
      size += d.length
      if (size > req.maxOutputBytes) killGroup(executorError(ExecutorErrorCode.OUTPUT_TOO_LARGE, `task ${req.taskId} wrote more than ${req.maxOutputBytes} bytes of output and was stopped`, 'write less output per task'))
      else chunks.push(d)
    })
    child.stderr.on('data', (d: Buffer) => { stderr.push(d) })
    child.stdin.on('error', () => { /* the command may not read its input */ })
    child.stdin.end(req.input)
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', c => resolve(c))
      })
      if (failure !== undefined) throw withTaskLog(failure, stderr.log())
      // A command that ends between two samples is measured by what this process reaped, when
      // no other process task could have been reaped in the same window.
      const runningNow: number = this.running.size
      if (alone && runningNow === 1) cpuMs = Math.max(cpuMs, await reapedChildrenCpuMs() - reapedBefore)
      const snippet = logSnippet(stderr.log())
      if (code !== 0) throw withTaskLog(executorError(ExecutorErrorCode.EXIT_CODE, `task ${req.taskId}: the command exited with code ${String(code)}${snippet === '' ? '' : `: ${snippet}`}`), stderr.log())
      const output = new Uint8Array(Buffer.concat(chunks))
      return { output, wallMs: performance.now() - started, cpuMs, log: stderr.log() }
    } finally {
      clearTimeout(timer)
      clearInterval(sampler)
      opts.signal?.removeEventListener('abort', onAbort)
      this.running.delete(onAbort)
      failure ??= new Error('cleanup')
      await iso.kill() // whatever the command left behind dies with its namespace before the directory goes
    }
  }

  async close (): Promise<void> {
    for (const stop of [...this.running]) stop()
    const root = this.root
    this.root = undefined
    if (root !== undefined) await rm(await root, { recursive: true, force: true }).catch(() => {})
  }
}
