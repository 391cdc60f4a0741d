// The default executor: WebAssembly task modules in a persistent pool of worker threads.
// Modules are validated against the host's limits before they compile (core/compute/wasm-validate.ts).
// Wall-time limit: the worker is terminated and replaced. Memory cap: baked into the module's
// memory limits (see core/compute/wasm-memory.ts) plus V8 heap limits on the worker; a worker whose
// task grew its memory is replaced after the task, so the memory goes back to the OS at once.
// Determinism: the host gives modules no clock and no randomness (ABI mode).
import { Worker } from 'node:worker_threads'
import { ModuleCache, capPagesFor, type PreparedModule } from './wasm-modules.js'
import { cancelledError, executorError, ExecutorErrorCode, type Availability, type BundleRunOptions, type BundleTaskResult, type ExecutionRequest, type ExecutionResult, type Executor, type RunOptions } from './types.js'
import { WASM_PAGE_BYTES } from '../../core/compute/wasm-memory.js'
import { TASK_LOG_TAIL_BYTES, withTaskLog, type TaskLog } from './output-tail.js'

export interface WasmExecutorInit {
  /** Worker threads kept warm (the number of wasm tasks that run at once). Default 2. */
  workers?: number
  /** Compiled modules kept warm. Default 64. */
  moduleCacheSize?: number
  /** V8 heap limit of each worker, MiB (the module's linear memory is capped separately). */
  workerHeapMib?: number
  /** A worker whose task ended with more linear memory than this (bytes) is replaced. Default 16 MiB. */
  recycleAboveBytes?: number
}

interface Job {
  id: number
  req: ExecutionRequest
  prepared: PreparedModule
  opts: RunOptions
  resolve: (r: ExecutionResult) => void
  reject: (e: Error) => void
  /** A bundle's tasks in one message (runBundle): `req` is its first, its timeoutMs the watchdog's. */
  bundle?: { reqs: readonly ExecutionRequest[], cutMs: number, cutBytes: number, stopFlag?: Int32Array, at: Int32Array, done: (r: BundleTaskResult[]) => void }
}

/** A worker's answer (wasm-worker.js): a task's end, its progress, or a bundle's ends. */
interface WorkerMessage { type: string, id: number, fraction?: number, output?: Uint8Array, cpuMs?: number, code?: string, message?: string, memoryBytes?: number, heapBytes?: number, stderr?: Uint8Array, stderrBytes?: number, wallMs?: number, startedAt?: number, finishedAt?: number, results?: WorkerMessage[], recycle?: boolean }

interface PoolWorker { worker: Worker, ready: Promise<void>, job?: Job, timer?: NodeJS.Timeout, startedAt: number, onAbort?: () => void }

const WORKER_URL = new URL('./wasm-worker.js', import.meta.url)

export class WasmExecutor implements Executor {
  readonly name = 'wasm' as const
  /** Modules run on the CPU (no GPU API is imported): a GPU slot granted to a wasm task would sit idle. */
  readonly usesGpus = false
  readonly modules: ModuleCache
  private readonly size: number
  private readonly heapMib: number
  private readonly recycleAbove: number
  /** Workers replaced because their task grew its memory (or its heap); for tests and status. */
  recycled = 0
  private readonly idle: PoolWorker[] = []
  private readonly all = new Set<PoolWorker>()
  private readonly waiting: Job[] = []
  private nextId = 1
  private closed = false

  constructor (init: WasmExecutorInit = {}) {
    this.size = Math.max(1, init.workers ?? 2)
    this.heapMib = init.workerHeapMib ?? 64
    this.recycleAbove = init.recycleAboveBytes ?? 16 * 1024 * 1024
    this.modules = new ModuleCache(init.moduleCacheSize ?? 64)
  }

  async availability (): Promise<Availability> { return { available: true } }

  /** Starts the workers now instead of on the first task (so the first task is not slow). */
  async warmUp (): Promise<void> {
    while (this.all.size < this.size) this.idle.push(this.spawn())
    await Promise.all([...this.all].map(async w => await w.ready))
  }

  async run (req: ExecutionRequest, opts: RunOptions = {}): Promise<ExecutionResult> {
    if (this.closed) throw executorError(ExecutorErrorCode.UNAVAILABLE, 'the wasm executor is closed')
    if (opts.signal?.aborted === true) throw cancelledError(req.taskId, opts.signal)
    const { prepared, entry } = await this.prepare(req)
    const started = performance.now()
    const r = await new Promise<ExecutionResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, req: { ...req, entry }, prepared, opts, resolve, reject }
      this.waiting.push(job)
      this.pump()
    })
    return { ...r, wallMs: performance.now() - started }
  }

  /**
   * A bundle's tasks (the same module, entry and memory limit) in one message to one worker, run
   * there one after another and answered in one message. The watchdog stops the worker once the
   * bundle ran `cutMs` (after which it starts no task) plus its longest task limit (or the sum of
   * its limits, if less): every task fails TASK_TIMEOUT then (the worker is replaced), as a task that runs past its limit alone.
   */
  async runBundle (reqs: readonly ExecutionRequest[], opts: BundleRunOptions): Promise<BundleTaskResult[]> {
    const first = reqs[0]
    if (first === undefined) return []
    if (this.closed) throw executorError(ExecutorErrorCode.UNAVAILABLE, 'the wasm executor is closed')
    if (opts.signal?.aborted === true) throw cancelledError(first.taskId, opts.signal)
    if (reqs.some(r => r.code !== first.code || r.entry !== first.entry || r.memoryLimitMib !== first.memoryLimitMib || r.maxOutputBytes !== first.maxOutputBytes)) throw new RangeError('a wasm bundle runs one module, entry, memory and output limit')
    const { prepared, entry } = await this.prepare(first)
    // no task starts after cutMs, none runs past its limit: the bundle ends by then (and by the sum of its limits)
    const limits = reqs.map(r => r.timeoutMs)
    const watchdogMs = Math.min(opts.cutMs + Math.max(...limits), limits.reduce((a, b) => a + b, 0), 2 ** 31 - 1)
    // the worker notes here which task it started (1-based): should the worker be stopped (the
    // watchdog, out of heap) that task fails, the others are not started or their results are lost
    // with the worker (cut: sent again), as a task that fails alone fails alone (review20)
    const at = new Int32Array(new SharedArrayBuffer(4))
    const started = performance.now()
    return await new Promise<BundleTaskResult[]>((resolve, reject) => {
      const lost = (err: Error): void => {
        const r = Atomics.load(at, 0) - 1
        const code = (err as { code?: string }).code
        if (r < 0 || r >= reqs.length || code === ExecutorErrorCode.CANCELLED || code === ExecutorErrorCode.UNAVAILABLE) { reject(err); return }
        const wallMs = performance.now() - started
        const finishedAt = Date.now()
        const error = executorError(code ?? ExecutorErrorCode.TRAP, `task ${reqs[r].taskId}: it was running when ${err.message}`, (err as { hint?: string }).hint ?? hintFor(code), err)
        resolve(reqs.map((_, k): BundleTaskResult => k === r ? { ok: false, error, wallMs, startedAt: finishedAt - Math.round(wallMs), finishedAt } : { cut: true }))
      }
      const job: Job = { id: this.nextId++, req: { ...first, entry, timeoutMs: watchdogMs }, prepared, opts: { signal: opts.signal }, resolve: () => {}, reject: lost, bundle: { reqs, cutMs: opts.cutMs, cutBytes: opts.cutBytes, stopFlag: opts.stopFlag, at, done: resolve } }
      this.waiting.push(job)
      this.pump()
    })
  }

  /** The module compiled (cached) and the entry a request runs; throws NO_ENTRY when the module lacks it. */
  private async prepare (req: ExecutionRequest): Promise<{ prepared: PreparedModule, entry: string }> {
    const prepared = await this.modules.get(req.code, req.codeHash, req.memoryLimitMib)
    const entry = prepared.mode === 'wasi' ? '_start' : (req.entry === '' ? 'run' : req.entry)
    if (prepared.mode === 'wasi' && req.entry !== '' && req.entry !== '_start') throw executorError(ExecutorErrorCode.NO_ENTRY, `entry "${req.entry}" was asked for, but a WASI module is started through "_start"`, 'leave the entry empty or set it to "_start"')
    if (!prepared.functions.has(entry)) throw executorError(ExecutorErrorCode.NO_ENTRY, `the module exports no function "${entry}" (it exports: ${[...prepared.functions].join(', ') || 'none'})`, 'set the task entry to one of the exported functions')
    if (prepared.mode === 'abi' && !prepared.functions.has('alloc')) throw executorError(ExecutorErrorCode.NO_ENTRY, 'the module exports no "alloc" function, which the task ABI needs to receive its input', 'export alloc(len: i32): ptr (see src/compute/README.md)')
    return { prepared, entry }
  }

  private spawn (): PoolWorker {
    const worker = new Worker(WORKER_URL, {
      execArgv: ['--disable-warning=ExperimentalWarning'],
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: this.heapMib, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 }
    })
    // A worker that dies before it comes online settles `ready` too (the exit handler retires it).
    const ready = new Promise<void>(resolve => { worker.once('online', resolve); worker.once('exit', () => resolve()) })
    const pw: PoolWorker = { worker, ready, startedAt: 0 }
    this.all.add(pw)
    worker.unref()
    worker.on('message', (msg: WorkerMessage) => {
      const job = pw.job
      if (job === undefined || msg.id !== job.id) return
      if (msg.type === 'progress') { job.opts.onProgress?.(msg.fraction ?? 0); return }
      this.finish(pw)
      if (job.bundle !== undefined) {
        job.bundle.done(job.bundle.reqs.map((req, k) => bundleTaskResult(req, msg.results?.[k])))
        if (msg.recycle === true) this.recycle(pw)
        else this.release(pw)
        return
      }
      const log = logOf(msg)
      if (msg.type === 'done') job.resolve({ output: msg.output ?? new Uint8Array(0), cpuMs: msg.cpuMs ?? 0, wallMs: 0, ...(log !== undefined ? { log } : {}) })
      else job.reject(withTaskLog(executorError(msg.code ?? ExecutorErrorCode.TRAP, `task ${job.req.taskId}: ${msg.message ?? 'failed'}`, hintFor(msg.code)), log))
      // A grown linear memory (or heap) is only returned to the OS when its isolate goes: replace the worker.
      if ((msg.memoryBytes ?? 0) > this.recycleAbove || (msg.heapBytes ?? 0) > this.heapMib * 1048576 / 2) this.recycle(pw)
      else this.release(pw)
    })
    worker.on('error', (err: Error & { code?: string }) => {
      const job = pw.job
      this.retire(pw)
      this.refill()
      if (job === undefined) return
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY'
      job.reject(executorError(oom ? ExecutorErrorCode.MEMORY_LIMIT : ExecutorErrorCode.TRAP, oom ? `task ${job.req.taskId} ran its worker out of heap (${this.heapMib} MiB)` : `task ${job.req.taskId}: the worker failed: ${err.message}`, undefined, err))
    })
    worker.on('exit', () => {
      const job = pw.job
      this.retire(pw)
      this.refill()
      job?.reject(executorError(ExecutorErrorCode.TRAP, `task ${job.req.taskId}: the worker exited unexpectedly`))
    })
    return pw
  }

  private pump (): void {
    while (this.waiting.length > 0) {
      let pw = this.idle.pop()
      if (pw === undefined) {
        if (this.all.size >= this.size) return
        pw = this.spawn()
      }
      this.dispatch(pw, this.waiting.shift() as Job)
    }
  }

  private dispatch (pw: PoolWorker, job: Job): void {
    const { req, prepared } = job
    if (job.opts.signal?.aborted === true) { job.reject(cancelledError(req.taskId, job.opts.signal)); this.release(pw); return }
    pw.job = job
    pw.startedAt = performance.now()
    const late = job.bundle === undefined
      ? `task ${req.taskId} ran past its wall-time limit of ${req.timeoutMs} ms and was stopped`
      : `the bundle of ${job.bundle.reqs.length} tasks from ${req.taskId} ran past ${req.timeoutMs} ms (its cut plus its longest task limit, or all its limits) and was stopped`
    pw.timer = setTimeout(() => this.kill(pw, executorError(ExecutorErrorCode.TIMEOUT, late, 'raise the task deadline or split the work into smaller tasks')), req.timeoutMs)
    if (job.opts.signal !== undefined) {
      const signal = job.opts.signal
      pw.onAbort = () => this.kill(pw, cancelledError(req.taskId, signal))
      signal.addEventListener('abort', pw.onAbort, { once: true })
    }
    pw.worker.postMessage({
      id: job.id,
      module: prepared.module,
      mode: prepared.mode,
      entry: req.entry,
      input: req.input,
      wantProgress: job.opts.onProgress !== undefined,
      maxOutputBytes: req.maxOutputBytes,
      memoryCapBytes: capPagesFor(req.memoryLimitMib) * WASM_PAGE_BYTES,
      importMemory: prepared.importMemory,
      ...(job.bundle !== undefined
        ? { batch: job.bundle.reqs.map(r => ({ input: r.input, timeoutMs: r.timeoutMs })), cutMs: job.bundle.cutMs, cutBytes: job.bundle.cutBytes, stop: job.bundle.stopFlag, at: job.bundle.at, recycleAboveBytes: this.recycleAbove, recycleHeapBytes: this.heapMib * 1048576 / 2 }
        : {})
    })
  }

  /** Clears the job's timer and abort listener; the job stays on the worker until released. */
  private finish (pw: PoolWorker): void {
    if (pw.timer !== undefined) clearTimeout(pw.timer)
    pw.timer = undefined
    if (pw.onAbort !== undefined) pw.job?.opts.signal?.removeEventListener('abort', pw.onAbort)
    pw.onAbort = undefined
  }

  private release (pw: PoolWorker): void {
    pw.job = undefined
    if (!this.all.has(pw)) return
    if (this.closed) { void pw.worker.terminate(); return }
    this.idle.push(pw)
    this.pump()
  }

  /** Terminates a busy worker (timeout or cancel); a fresh one takes its place at once. */
  private kill (pw: PoolWorker, err: Error): void {
    const job = pw.job
    this.finish(pw)
    this.retire(pw)
    void pw.worker.terminate()
    job?.reject(err)
    this.refill()
  }

  /** Replaces an idle worker whose task left it big: terminated (its memory goes back), a fresh one warm. */
  private recycle (pw: PoolWorker): void {
    this.recycled++
    this.retire(pw)
    void pw.worker.terminate()
    this.refill()
  }

  /** Keeps the pool at its size while open, so the next task does not wait for a worker to start. */
  private refill (): void {
    if (this.closed) return
    while (this.all.size < this.size) this.idle.push(this.spawn())
    this.pump()
  }

  private retire (pw: PoolWorker): void {
    this.finish(pw)
    pw.job = undefined
    this.all.delete(pw)
    const i = this.idle.indexOf(pw)
    if (i >= 0) this.idle.splice(i, 1)
    if (!this.closed) this.pump()
  }

  async close (): Promise<void> {
    this.closed = true
    for (const job of this.waiting.splice(0)) job.reject(cancelledError(job.req.taskId))
    const workers = [...this.all]
    for (const pw of workers) {
      const job = pw.job
      this.retire(pw)
      job?.reject(cancelledError(job.req.taskId))
    }
    await Promise.all(workers.map(async pw => await pw.worker.terminate()))
  }

  get workerCount (): number { return this.all.size }
}

/** One task of a bundle as the worker answered it (absent: the answer lacked it, a failure). */
function bundleTaskResult (req: ExecutionRequest, m: WorkerMessage | undefined): BundleTaskResult {
  if (m?.type === 'cut') return { cut: true }
  const times = { startedAt: m?.startedAt ?? Date.now(), finishedAt: m?.finishedAt ?? Date.now() }
  const log = m === undefined ? undefined : logOf(m)
  if (m?.type === 'done') return { ok: true, result: { output: m.output ?? new Uint8Array(0), cpuMs: m.cpuMs ?? 0, wallMs: m.wallMs ?? 0, ...(log !== undefined ? { log } : {}) }, ...times }
  const error = withTaskLog(executorError(m?.code ?? ExecutorErrorCode.TRAP, `task ${req.taskId}: ${m?.message ?? 'the worker gave no answer for it'}`, hintFor(m?.code)), log)
  return { ok: false, error, wallMs: m?.wallMs ?? 0, ...times }
}

/** The worker's copy of the task's stderr, held to the same cap here (the worker is ours, but cheap to check). */
function logOf (msg: { stderr?: Uint8Array, stderrBytes?: number }): TaskLog | undefined {
  if (!(msg.stderr instanceof Uint8Array) || msg.stderr.length === 0) return undefined
  const stderr = msg.stderr.length > TASK_LOG_TAIL_BYTES ? msg.stderr.slice(msg.stderr.length - TASK_LOG_TAIL_BYTES) : msg.stderr
  return { stderr, stderrBytes: Math.max(stderr.length, msg.stderrBytes ?? 0) }
}

function hintFor (code: string | undefined): string | undefined {
  switch (code) {
    case ExecutorErrorCode.MEMORY_LIMIT: return 'raise the task memory limit or make the module use less memory'
    case ExecutorErrorCode.OUTPUT_TOO_LARGE: return 'return less data per task or split the task'
    case ExecutorErrorCode.BAD_MODULE: return 'check the module follows the task ABI in src/compute/README.md'
    default: return undefined
  }
}
