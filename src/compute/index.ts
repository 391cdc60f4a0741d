// The compute peer the daemon owns: probes the machine, benchmarks it, answers lease requests
// with offers, runs tasks in slots on the executors, meters them and signs usage receipts.
import { createHash } from 'node:crypto'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { EventEmitter } from 'node:events'
import { dbc } from '../wire/gen/wire.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, toHex } from '../core/identity/index.js'
import { normalizeGpuModel, parseGpuSpec, type GpuSpec } from '../core/compute/gpu-spec.js'
import { DEFAULT_POLICY, demandOf, gpuPriceFor, offeredExecutors, type ExecutorName, type ProviderPolicy } from '../core/compute/offer-policy.js'
import { agreedPricingVersion } from '../core/compute/pricing.js'
import type { SlotDemand } from '../core/compute/slot-ledger.js'
import { buildReceipt, signReceipt, signReceiptBatch, type Ed25519Signer } from '../core/settlement/receipt.js'
import { createEd25519Signer } from './signer.js'
import { ConfigError, ExecutorError } from '../errors.js'
import { GpuSpecError } from '../core/compute/gpu-spec.js'
import { chooseOfferedGpus } from '../core/compute/gpu-offer.js'
import { probeResources, gpuDevices, demandOnProbedGpus, type ResourceProbe } from './probe.js'
import { benchmarkPeer, type PerformanceScores } from './benchmark.js'
import { SlotManager, type SlotEvent } from './slots.js'
import { answerLeaseRequest, type OfferOptions } from './offers.js'
import { WasmExecutor } from './executors/wasm.js'
import { ProcessExecutor } from './executors/process.js'
import { DockerExecutor, type ContainerSettings } from './executors/docker.js'
import { ExecutorErrorCode, type Executor } from './executors/types.js'
import { taskLogOf, type TaskLog } from './executors/output-tail.js'
import { nodeSha256 } from '../crypto/hash.js'

export type { SlotEvent, ResourceProbe, PerformanceScores, ProviderPolicy, ExecutorName }
export { ExecutorErrorCode }

/** How often executors' availability is checked again after start. */
const EXECUTOR_RECHECK_MS = 30_000

export interface ComputePeerInit {
  /** The provider's Ed25519 secret key (32 bytes): signs offers and receipts. */
  secretKey: Uint8Array
  policy?: Partial<ProviderPolicy>
  /** Declared GPUs for machines without them (test networks): specs or the `--gpus` text. */
  declaredGpus?: GpuSpec[] | string
  /** Concurrent CPU tasks. Default: the core count. */
  cpuSlots?: number
  /** Memory offered to tasks, MiB. Default: 3/4 of the machine's. */
  memoryMib?: number
  /** Tasks that may wait for a slot. Default 64. */
  maxQueue?: number
  /** Memory cap of a task that does not set one, MiB. Default 256. */
  defaultMemoryLimitMib?: number
  /** Largest output a task may return, bytes. Default the policy's maxOutputBytes (16 MiB). */
  maxOutputBytes?: number
  /** Probed GPUs offered, by nvidia-smi index or model; default all (config provider.gpusOffered). */
  gpusOffered?: Array<number | string>
  /** Most GPUs offered in all, probed then declared (config provider.slots.gpu); default no cap. */
  gpuSlots?: number
  /** V8 heap of each wasm worker, MiB (config provider.executors.wasm.workerHeapMiB). Default 64. */
  wasmWorkerHeapMib?: number
  /** Process tasks get the host's network (config provider.executors.process.network). Default false. */
  processNetwork?: boolean
  payoutAddress?: string
  nvidiaSmi?: string
  dockerSocket?: string
  /** The container executor's settings: engine socket, the images tasks may name, limits. */
  containers?: ContainerSettings
  /** Run the join benchmark in start() (default true); false gives fixed scores of 100. */
  benchmark?: boolean
  tmpDir?: string
  /** The node's data dir (identity key, stores): hidden from process tasks. */
  dataDir?: string
}

export interface ComputeCapabilities {
  peerId: Uint8Array
  cpu: { model: string, cores: number, slots: number, score: number }
  memoryMib: number
  diskFreeMib: number
  gpus: GpuSpec[]
  gpuScores: Record<string, number>
  gpuProbeError?: string
  /** Probed GPUs the policy keeps out of offers (provider.gpusOffered, slots.gpu), by index. */
  gpusWithheld: number[]
  /** Executors offers list: enabled by policy and working here. */
  executors: ExecutorName[]
  /** Why each executor that is not listed is missing. */
  unavailable: Partial<Record<ExecutorName, string>>
  priceGpuHour: number
  priceCpuHour: number
}

export interface RunTaskOptions {
  signal?: AbortSignal
  /** The job owner's peer id (for the receipt); default empty. */
  consumer?: Uint8Array
  /** Resources the lease granted for this task; default 1 CPU and the task's memory limit. */
  resources?: dbc.task.v1.IResources
  onProgress?: (fraction: number) => void
  /**
   * The result's receipt comes back unsigned (an empty signature): the caller signs it with the
   * other results it writes at once (signReceipts: one signature for several). Default: signed.
   */
  unsignedReceipt?: boolean
}

export interface TaskOutcome {
  result: dbc.task.v1.TaskResult
  receipt: dbc.receipt.v1.SignedReceipt
  /** The receipt as built, what `receipt.receipt` encodes (callers read it here instead of decoding those bytes). */
  usage: dbc.receipt.v1.UsageReceipt
}

export class ComputePeer {
  readonly peerId: Uint8Array
  readonly policy: ProviderPolicy
  readonly events = new EventEmitter<{ event: [SlotEvent] }>()
  private readonly init: ComputePeerInit
  private readonly sign: Ed25519Signer
  private readonly declared: GpuSpec[]
  private readonly executors: Map<ExecutorName, Executor>
  private readonly wasm: WasmExecutor
  private probe?: ResourceProbe
  private gpusWithheld: number[] = []
  private scores: PerformanceScores = { cpu: 100, gpus: {}, cpuTileMs: 0, runs: 0 }
  private available: ExecutorName[] = []
  private unavailable: Partial<Record<ExecutorName, string>> = {}
  private slotManager?: SlotManager
  private readonly running = new Map<string, AbortController>()
  private recheck?: ReturnType<typeof setInterval>
  /** stop() was called: nothing more runs, and what its stop cut short fails PEER_STOPPED. */
  private stopping = false
  /** drain() was called: the tasks running finish; tasks new or queued since wait for stop() (then PEER_STOPPED). */
  private drainHold: { until: Promise<void>, release: () => void } | undefined
  /** Tasks that hold a slot and run now; tasks held by a drain (waiting for stop()). */
  private executingCount = 0
  private heldCount = 0

  constructor (init: ComputePeerInit) {
    this.init = init
    this.peerId = peerIdBytesFromEd25519Key(ed25519PublicKey(init.secretKey))
    this.sign = createEd25519Signer(init.secretKey)
    this.policy = { ...DEFAULT_POLICY, ...init.policy }
    try {
      this.declared = typeof init.declaredGpus === 'string' ? parseGpuSpec(init.declaredGpus) : (init.declaredGpus ?? [])
    } catch (err) {
      if (err instanceof GpuSpecError) throw new ConfigError('gpus', err.message, { hint: 'use e.g. --gpus 2xRTX4090:24GiB,A100:80GiB' })
      throw err
    }
    const cpuSlots = init.cpuSlots ?? cpus().length
    this.wasm = new WasmExecutor({ workers: cpuSlots, workerHeapMib: init.wasmWorkerHeapMib })
    this.executors = new Map<ExecutorName, Executor>([
      ['wasm', this.wasm],
      // Process task dirs live under os.tmpdir(), not the data dir: the task user must be able to reach them.
      ['process', new ProcessExecutor({ enabled: this.policy.executors.includes('process'), dataDir: init.dataDir, network: init.processNetwork })],
      ['docker', new DockerExecutor({ socketPath: init.dockerSocket, settings: init.containers, enabled: this.policy.executors.includes('docker'), owner: toHex(this.peerId), workDir: init.tmpDir === undefined ? undefined : join(init.tmpDir, 'containers') })]
    ])
  }

  /** Probes the machine, checks which executors work, warms the worker pool and benchmarks. */
  async start (opts: { signal?: AbortSignal } = {}): Promise<void> {
    const probe = await probeResources({ nvidiaSmi: this.init.nvidiaSmi, declaredGpus: this.declared, diskPath: this.init.tmpDir, signal: opts.signal })
    // the operator's choice of GPUs: those withheld are neither advertised nor granted to a slot
    const offered = chooseOfferedGpus(probe.probedGpus, this.declared, { offered: this.init.gpusOffered, maxGpus: this.init.gpuSlots })
    this.probe = { ...probe, probedGpus: offered.probed, gpus: offered.gpus }
    this.gpusWithheld = offered.withheld
    const cpuSlots = this.init.cpuSlots ?? this.probe.cpu.cores
    this.slotManager = new SlotManager({
      capacity: { cpuSlots, memoryMib: this.init.memoryMib ?? Math.floor(totalmem() / 1048576 * 0.75), gpus: gpuDevices(this.probe) },
      maxQueue: this.init.maxQueue
    })
    this.slotManager.events.on('event', e => this.events.emit('event', e))
    // what a crashed earlier run left (docker: containers with this peer's label) goes first
    for (const [name, ex] of this.executors) if (this.policy.executors.includes(name)) await ex.start?.().catch(() => {})
    await this.checkExecutors()
    // an engine that starts late, was slow to answer or went away is seen within a minute
    this.recheck = setInterval(() => { this.checkExecutors().catch(() => {}) }, EXECUTOR_RECHECK_MS)
    this.recheck.unref()
    await this.wasm.warmUp()
    if (this.init.benchmark ?? true) this.scores = await benchmarkPeer(this.wasm, this.probe.gpus, { signal: opts.signal })
    else this.scores = { cpu: 100, gpus: Object.fromEntries(this.probe.gpus.map(g => [g.model, 100])), cpuTileMs: 0, runs: 0 }
  }

  /** Which executors work here now, and why the others do not. */
  private async checkExecutors (): Promise<void> {
    const available: ExecutorName[] = []
    const unavailable: Partial<Record<ExecutorName, string>> = {}
    for (const [name, ex] of this.executors) {
      const a = await ex.availability()
      if (a.available) available.push(name)
      else unavailable[name] = a.reason ?? 'unavailable'
    }
    this.available = available
    this.unavailable = unavailable
  }

  /**
   * Starts a graceful stop (`dbc node stop`): the tasks running finish and return their results;
   * tasks queued for a slot or sent since are not started and wait for stop(), which answers them
   * PEER_STOPPED. Answering them now would end the submitter's lease with the running copies on it
   * (NO_ANSWER_CODES); after the results were written, the lease ends as before.
   */
  drain (): void {
    if (this.drainHold !== undefined || this.stopping) return
    let release = (): void => {}
    const until = new Promise<void>(resolve => { release = resolve })
    this.drainHold = { until, release }
    this.slotManager?.hold()
  }

  /** A drain is under way (new leases are refused). */
  get draining (): boolean { return this.drainHold !== undefined && !this.stopping }
  /** Tasks running now (holding a slot). */
  get executing (): number { return this.executingCount }
  /** Tasks not started that wait for the stop: held by the drain or queued for a slot. */
  get waiting (): number { return this.heldCount + (this.slotManager?.queued ?? 0) }

  async stop (): Promise<void> {
    this.stopping = true
    this.drainHold?.release()
    clearInterval(this.recheck)
    this.slotManager?.drain()
    for (const c of this.running.values()) c.abort(new ExecutorError('PEER_STOPPED', 'the compute peer is stopping'))
    await Promise.all([...this.executors.values()].map(async e => await e.close()))
  }

  private slots (): SlotManager {
    if (this.slotManager === undefined) throw new ExecutorError('PEER_NOT_STARTED', 'the compute peer is not started', { hint: 'call start() first' })
    return this.slotManager
  }

  capabilities (): ComputeCapabilities {
    const probe = this.probe
    if (probe === undefined) throw new ExecutorError('PEER_NOT_STARTED', 'the compute peer is not started', { hint: 'call start() first' })
    const gpuPrices = probe.gpus.map(g => gpuPriceFor(this.policy, g.model) ?? 0)
    return {
      peerId: this.peerId,
      cpu: { model: probe.cpu.model, cores: probe.cpu.cores, slots: this.slots().ledger.capacity.cpuSlots, score: this.scores.cpu },
      memoryMib: this.slots().ledger.capacity.memoryMib,
      diskFreeMib: probe.disk.freeMib,
      gpus: probe.gpus,
      gpuScores: this.scores.gpus,
      gpuProbeError: probe.gpuProbeError,
      gpusWithheld: this.gpusWithheld,
      executors: offeredExecutors(this.policy, this.available),
      unavailable: this.unavailable,
      priceGpuHour: gpuPrices.length > 0 ? Math.min(...gpuPrices) : 0,
      priceCpuHour: this.policy.priceCpuHour
    }
  }

  /**
   * The capability fields of this peer for its DHT record (dbc.capability.v1.CapabilityRecord);
   * the caller adds peer id, addresses, location, times and seq, then signs.
   */
  capabilityRecordFields (): dbc.capability.v1.ICapabilityRecord {
    const c = this.capabilities()
    const gpuScores = Object.values(c.gpuScores)
    return {
      gpus: c.gpus.map(g => ({ model: g.model, count: g.count, memoryMib: g.memoryMib, declared: g.declared })),
      cpuCores: c.cpu.slots,
      memoryMib: c.memoryMib,
      priceGpuHour: c.priceGpuHour,
      priceCpuHour: c.priceCpuHour,
      executors: c.executors,
      perfScore: gpuScores.length > 0 ? Math.max(...gpuScores) : c.cpu.score
    }
  }

  /** A signed offer (or signed refusal) for a lease request. */
  offer (req: dbc.task.v1.ILeaseRequest, opts: OfferOptions = {}): dbc.task.v1.Offer {
    return answerLeaseRequest(req, { signingKey: { provider: this.peerId, sign: this.sign }, policy: this.policy, availableExecutors: this.available, ledger: this.slots().ledger, scores: this.scores, payoutAddress: this.init.payoutAddress, gpusProbed: d => this.probe !== undefined && demandOnProbedGpus(this.probe, this.slots().ledger.capacity.gpus, d) }, opts)
  }

  /** Cancels a queued or running task; false when no such task is here. */
  cancel (taskId: Uint8Array | string): boolean {
    const c = this.running.get(typeof taskId === 'string' ? taskId : toHex(taskId))
    c?.abort(new ExecutorError(ExecutorErrorCode.CANCELLED, 'cancelled by request'))
    return c !== undefined
  }

  /** Signs encoded receipts (of tasks run with unsignedReceipt) with one signature (core/settlement/receipt.ts signReceiptBatch). */
  signReceipts (receipts: readonly Uint8Array[]): dbc.receipt.v1.SignedReceipt[] {
    return signReceiptBatch(receipts, this.sign, nodeSha256)
  }

  /**
   * Runs a task. Throws ExecutorError when it is refused before running (executor off, input
   * too large, limits above policy, no slot); once it ran, returns the result (ok or the
   * failure as `CODE: message`) and a signed receipt for what it used.
   */
  async runTask (task: dbc.task.v1.ITask, opts: RunTaskOptions = {}): Promise<TaskOutcome> {
    const taskId = toHex(task.taskId ?? new Uint8Array(0))
    // a draining peer starts nothing more: the task waits for the stop (see drain())
    const hold = this.drainHold
    if (hold !== undefined && !this.stopping) {
      this.heldCount++
      try { await heldUntil(hold.until, opts.signal) } finally { this.heldCount-- }
      if (!this.stopping) throw new ExecutorError(ExecutorErrorCode.CANCELLED, `task ${taskId}: cancelled while this peer drained`)
    }
    // a stopping peer runs nothing more: PEER_STOPPED tells the submitter the copy was not run (it
    // waits for this provider to come back), not that the provider failed it
    if (this.stopping) throw new ExecutorError('PEER_STOPPED', `task ${taskId}: the compute peer is stopping`)
    const executorName = (task.executor == null || task.executor === '' ? 'wasm' : task.executor) as ExecutorName
    const executor = this.executors.get(executorName)
    if (executor === undefined || !this.policy.executors.includes(executorName)) throw new ExecutorError(ExecutorErrorCode.DISABLED, `task ${taskId}: executor "${executorName}" is not enabled on this provider (enabled: ${this.policy.executors.join(', ')})`, { hint: 'send it as a wasm task or to another provider' })
    if (!this.available.includes(executorName)) throw new ExecutorError(ExecutorErrorCode.UNAVAILABLE, `task ${taskId}: executor "${executorName}" is not available here: ${this.unavailable[executorName] ?? 'unknown reason'}`)
    const input = task.input ?? new Uint8Array(0)
    if (input.length > this.policy.maxInputBytes) throw new ExecutorError(ExecutorErrorCode.INPUT_TOO_LARGE, `task ${taskId}: input of ${input.length} bytes is above this provider's limit of ${this.policy.maxInputBytes} bytes`, { hint: 'split the input across more tasks' })
    const timeoutMs = (task.deadlineMs ?? 0) > 0 ? (task.deadlineMs ?? 0) : this.policy.maxTaskMs
    if (timeoutMs > this.policy.maxTaskMs) throw new ExecutorError('TASK_TOO_LONG', `task ${taskId}: deadline of ${timeoutMs} ms is above this provider's limit of ${this.policy.maxTaskMs} ms (provider.maxTask.wallSeconds)`, { hint: 'split the work into shorter tasks' })
    const cap = this.policy.maxTaskMemoryMib
    const defaultMemory = this.init.defaultMemoryLimitMib ?? 256
    const memoryLimitMib = (task.memoryLimitMib ?? 0) > 0 ? (task.memoryLimitMib ?? 0) : (cap > 0 ? Math.min(cap, defaultMemory) : defaultMemory)
    const demand: SlotDemand = { ...demandOf(opts.resources), memoryMib: Math.max(memoryLimitMib, opts.resources?.memoryMib ?? 0) }
    if (cap > 0 && demand.memoryMib > cap) throw new ExecutorError('TASK_MEMORY_TOO_LARGE', `task ${taskId}: ${demand.memoryMib} MiB of memory is above this provider's limit of ${cap} MiB per task (provider.maxTask.memoryMiB)`, { hint: 'lower resources.memoryMib or send it to another provider' })
    // an executor that never touches a GPU (wasm) holds none: the GPU stays free for a task that
    // can use it, and the receipt bills no GPU-seconds at the GPU price for CPU work
    if (executor.usesGpus === false) demand.gpus = 0
    if (this.running.has(taskId)) throw new ExecutorError('TASK_DUPLICATE', `task ${taskId} is already queued or running here`)
    const controller = new AbortController()
    const onOuterAbort = (): void => controller.abort(opts.signal?.reason)
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true })
    if (opts.signal?.aborted === true) controller.abort(opts.signal.reason)
    this.running.set(taskId, controller)
    const slots = this.slots()
    try {
      const grant = await slots.acquire(taskId, demand, { signal: controller.signal })
      this.executingCount++
      let ok = false
      const startedAt = Date.now()
      let output: Uint8Array = new Uint8Array(0)
      let error = ''
      let code = ''
      let wallMs = 0
      let cpuMs = 0
      let log: TaskLog | undefined
      const t0 = performance.now()
      try {
        const r = await executor.run({
          taskId,
          code: task.code ?? new Uint8Array(0),
          codeHash: task.codeHash != null && task.codeHash.length > 0 ? toHex(task.codeHash) : undefined,
          entry: task.entry ?? '',
          input,
          timeoutMs,
          memoryLimitMib,
          maxOutputBytes: this.init.maxOutputBytes ?? this.policy.maxOutputBytes,
          gpuIndexes: grant.gpuIndexes,
          cpus: grant.cpus
        }, { signal: controller.signal, onProgress: f => { opts.onProgress?.(f); slots.emit({ type: 'progress', taskId, fraction: f }) } })
        output = r.output
        wallMs = r.wallMs
        cpuMs = r.cpuMs
        log = r.log
        ok = true
      } catch (err) {
        const e = err as ExecutorError
        // cut short by this peer's stop (aborted, or its executor closed under it: "the wasm
        // executor is closed"): not the task's failure, nor this provider's (found on real daemons)
        code = this.stopping ? 'PEER_STOPPED' : e.code ?? 'TASK_FAILED'
        error = `${code}: ${e.message}`
        log = taskLogOf(err)
        wallMs = performance.now() - t0
        // Without a measurement, a failed task is billed as if it used its CPU the whole time.
        cpuMs = wallMs * grant.cpus
      } finally {
        this.executingCount--
        slots.release(taskId, ok)
      }
      const finishedAt = Date.now()
      const outputHash = new Uint8Array(createHash('sha256').update(output).digest())
      const gpuModel = grant.gpuIndexes.length > 0 ? slots.ledger.capacity.gpus.find(g => g.index === grant.gpuIndexes[0])?.model ?? '' : ''
      const receipt = buildReceipt({
        jobId: task.jobId ?? new Uint8Array(0),
        taskId: task.taskId ?? new Uint8Array(0),
        provider: this.peerId,
        consumer: opts.consumer ?? new Uint8Array(0),
        usage: { wallMs, cpuMs, gpuSeconds: grant.gpuIndexes.length * wallMs / 1000, bytesIn: input.length + (task.code?.length ?? 0), bytesOut: output.length },
        prices: { priceGpuHour: grant.gpuIndexes.length > 0 ? gpuPriceFor(this.policy, gpuModel) ?? 0 : 0, priceCpuHour: this.policy.priceCpuHour },
        startedAt,
        finishedAt,
        outputHash,
        payoutAddress: this.init.payoutAddress,
        // rounded as the submitter checks it (an older one: version 0)
        pricingVersion: agreedPricingVersion(task.pricingVersion),
        sha256: nodeSha256
      })
      const signed = opts.unsignedReceipt === true ? dbc.receipt.v1.SignedReceipt.create({ receipt: new Uint8Array(dbc.receipt.v1.UsageReceipt.encode(receipt).finish()), signature: new Uint8Array(0) }) : signReceipt(receipt, this.sign)
      const result = dbc.task.v1.TaskResult.create({ taskId: task.taskId ?? new Uint8Array(0), jobId: task.jobId ?? new Uint8Array(0), attempt: task.attempt ?? 0, ok, output, outputHash, error, code, receipt: signed, ...(log !== undefined ? { stderr: log.stderr, stderrBytes: log.stderrBytes } : {}) })
      return { result, receipt: signed, usage: receipt }
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort)
      this.running.delete(taskId)
    }
  }

  /**
   * A slot held outside a task (a training membership, src/training/subsystem.ts): taken now or
   * not at all (no queue), so offers see it busy and a busy peer refuses. Undefined when held
   * (or already held under `id`), else why not. releaseSlot gives it back.
   */
  holdSlot (id: string, demand: { cpus: number, gpus: number, gpuModel?: string }): string | undefined {
    const s = this.slots()
    if (this.heldSlots.has(id)) return undefined
    const a = s.ledger.allocate(id, { cpus: demand.cpus, gpus: demand.gpus, ...(demand.gpuModel !== undefined && demand.gpuModel !== '' ? { gpuModel: normalizeGpuModel(demand.gpuModel) } : {}) })
    if (a.kind === 'fits') { this.heldSlots.add(id); return undefined }
    return a.kind === 'wait' ? `all slots for this shape are busy (${a.reason})` : `it ${a.reason}`
  }

  releaseSlot (id: string): void {
    if (this.heldSlots.delete(id)) this.slotManager?.release(id, true, true)
  }

  private readonly heldSlots = new Set<string>()

  /** Executor statistics for diagnostics and benchmarks. */
  stats (): { running: number, queued: number, moduleCache: { size: number, hits: number, misses: number }, workers: number } {
    const s = this.slots()
    return { running: s.running, queued: s.queued, moduleCache: { size: this.wasm.modules.size, hits: this.wasm.modules.hits, misses: this.wasm.modules.misses }, workers: this.wasm.workerCount }
  }
}

/** Resolves when `until` does or `signal` aborts. */
async function heldUntil (until: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return await until
  if (signal.aborted) return
  let onAbort = (): void => {}
  const aborted = new Promise<void>(resolve => { onAbort = resolve; signal.addEventListener('abort', onAbort, { once: true }) })
  try { await Promise.race([until, aborted]) } finally { signal.removeEventListener('abort', onAbort) }
}
