// The `process` executor: a shell command in a private temp task directory, with a clean
// environment (none of the provider's variables), a wall-time limit and an output-size limit.
// It is NOT a security sandbox (the command runs as the provider's user and can name absolute
// paths), which is why it is off unless the provider policy enables it.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cancelledError, executorError, ExecutorErrorCode, type Availability, type ExecutionRequest, type ExecutionResult, type Executor, type RunOptions } from './types.js'

export interface ProcessExecutorInit {
  /** Must be true for the executor to run anything (the provider policy's switch). */
  enabled?: boolean
  /** Parent of the task directories. Default os.tmpdir(). */
  tmpDir?: string
  /** PATH given to tasks. */
  path?: string
  shell?: string
}

const CLK_TCK = 100 // USER_HZ on Linux; /proc/PID/stat times are in these ticks

/** utime + stime + cutime + cstime of a live process, in ms; undefined once it is gone. */
async function processCpuMs (pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // after "pid (comm) ": state is field 3, utime is field 14 → index 11 here
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
    return Number.isFinite(ticks) ? ticks * 1000 / CLK_TCK : undefined
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
  private readonly running = new Set<() => void>()

  constructor (init: ProcessExecutorInit = {}) {
    this.enabled = init.enabled ?? false
    this.tmpDir = init.tmpDir ?? tmpdir()
    this.path = init.path ?? '/usr/local/bin:/usr/bin:/bin'
    this.shell = init.shell ?? '/bin/sh'
  }

  async availability (): Promise<Availability> {
    return this.enabled ? { available: true } : { available: false, reason: 'the process executor is off; enable it in the provider policy (executors: [..., "process"])' }
  }

  async run (req: ExecutionRequest, opts: RunOptions = {}): Promise<ExecutionResult> {
    if (!this.enabled) throw executorError(ExecutorErrorCode.DISABLED, 'the process executor is disabled on this provider', 'use the wasm executor, or ask a provider that enables "process"')
    if (opts.signal?.aborted === true) throw cancelledError(req.taskId, opts.signal)
    if (req.entry.trim() === '') throw executorError(ExecutorErrorCode.NO_ENTRY, 'a process task needs a command in its entry')
    const dir = await mkdtemp(join(this.tmpDir, 'dbc-task-'))
    try {
      if (req.code.length > 0) {
        await writeFile(join(dir, 'code'), req.code)
        await chmod(join(dir, 'code'), 0o700)
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
    const child = spawn(this.shell, ['-c', req.entry], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    const chunks: Buffer[] = []
    let size = 0
    let stderr = ''
    let failure: Error | undefined
    let cpuMs = 0
    const killGroup = (why: Error): void => {
      failure ??= why
      try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL') } catch { /* already gone */ }
    }
    const sampler = setInterval(() => { if (child.pid !== undefined) void processCpuMs(child.pid).then(ms => { if (ms !== undefined) cpuMs = Math.max(cpuMs, ms) }) }, 50)
    const timer = setTimeout(() => killGroup(executorError(ExecutorErrorCode.TIMEOUT, `task ${req.taskId} ran past its wall-time limit of ${req.timeoutMs} ms and was stopped`, 'raise the task deadline')), req.timeoutMs)
    const onAbort = (): void => killGroup(cancelledError(req.taskId, opts.signal))
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    this.running.add(onAbort)
    child.stdout.on('data', (d: Buffer) => {
      size += d.length
      if (size > req.maxOutputBytes) killGroup(executorError(ExecutorErrorCode.OUTPUT_TOO_LARGE, `task ${req.taskId} wrote more than ${req.maxOutputBytes} bytes of output and was stopped`, 'write less output per task'))
      else chunks.push(d)
    })
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString('utf8') })
    child.stdin.on('error', () => { /* the command may not read its input */ })
    child.stdin.end(req.input)
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', c => resolve(c))
      })
      if (failure !== undefined) throw failure
      // A command that ends between two samples is measured by what this process reaped, when
      // no other process task could have been reaped in the same window.
      const runningNow: number = this.running.size
      if (alone && runningNow === 1) cpuMs = Math.max(cpuMs, await reapedChildrenCpuMs() - reapedBefore)
      if (code !== 0) throw executorError(ExecutorErrorCode.EXIT_CODE, `task ${req.taskId}: the command exited with code ${String(code)}${stderr === '' ? '' : `: ${stderr.trim().slice(0, 500)}`}`)
      const output = new Uint8Array(Buffer.concat(chunks))
      return { output, wallMs: performance.now() - started, cpuMs }
    } finally {
      clearTimeout(timer)
      clearInterval(sampler)
      opts.signal?.removeEventListener('abort', onAbort)
      this.running.delete(onAbort)
      killGroup(new Error('cleanup')) // leftover children of the command die with it
    }
  }

  async close (): Promise<void> {
    for (const stop of [...this.running]) stop()
  }
}
