// The compute peer the daemon owns: probes the machine, benchmarks it, answers lease requests
// with offers, runs tasks in slots on the executors, meters them and signs usage receipts.
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { EventEmitter } from 'node:events'
import type { dbc } from '../wire/gen/wire.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, toHex } from '../core/identity/index.js'
import { normalizeGpuModel, parseGpuSpec, type GpuSpec } from '../core/compute/gpu-spec.js'
import { DEFAULT_POLICY, gpuPriceFor, offeredExecutors, type ExecutorName, type ProviderPolicy } from '../core/compute/offer-policy.js'
import type { SlotGrant } from '../core/compute/slot-ledger.js'
import { signReceiptBatch, type Ed25519Signer } from '../core/settlement/receipt.js'
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
import { nodeSha256 } from '../crypto/hash.js'
import { allAborted, heldUntil, runInSlot, taskOutcome, validateTask, type CheckedTask, type TaskOutcome, type TaskRun, type TaskRunContext } from './task-run.js'
import { bundleAtOnce, runsAtOnce, type AtOncePeer } from './bundle-at-once.js'

import type { ComputePeerInit, ComputeCapabilities, RunTaskOptions, RunBundleOptions, BundleOutcome } from './peer-types.js'

export type { SlotEvent, ResourceProbe, PerformanceScores, ProviderPolicy, ExecutorName, TaskOutcome, ComputePeerInit, ComputeCapabilities, RunTaskOptions, RunBundleOptions, BundleOutcome }
export { ExecutorErrorCode }

/** How often executors' availability is checked again after start. */
const EXECUTOR_RECHECK_MS = 30_000


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
  /** What a bundle run in one go (bundle-at-once.ts) reads and counts of this peer; its stop flags a drain sets. */
  private readonly atOnce: AtOncePeer = {
    draining: () => this.drainHold !== undefined || this.stopping,
    stopping: () => this.stopping,
    executing: (n) => { this.executingCount += n },
    ran: () => { this.ranCount++ },
    stops: new Set<Int32Array>()
  }
  private recheck?: ReturnType<typeof setInterval>
  /** stop() was called: nothing more runs, and what its stop cut short fails PEER_STOPPED. */
  private stopping = false
  /** drain() was called: the tasks running finish; tasks new or queued since wait for stop() (then PEER_STOPPED). */
  private drainHold: { until: Promise<void>, release: () => void } | undefined
  /** Tasks that hold a slot and run now; tasks held by a drain (waiting for stop()). */
  private executingCount = 0
  private heldCount = 0
  /** Tasks that ran on an executor since start (ok or failed; a bundle's each): `dbc node status`'s tasks run. */
  private ranCount = 0

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
    for (const f of this.atOnce.stops) Atomics.store(f, 0, 1)
  }

  /** A drain is under way (new leases are refused). */
  get draining (): boolean { return this.drainHold !== undefined && !this.stopping }
  /** Tasks running now (holding a slot). */
  get executing (): number { return this.executingCount }
  /** Tasks that ran on an executor since start, ok or failed (each of a bundle's; not those refused before running). */
  get tasksRun (): number { return this.ranCount }
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
    const [out] = await this.runBundle([task], { ...opts, signals: [opts.signal] })
    if ('refused' in out) throw out.refused
    return out
  }

  /**
   * Runs the tasks of a bundle (proto TaskBundle) one after another in ONE slot, each with its own
   * cancel signal (`signals[i]`) and id (cancel() stops one), each on its own executor call and
   * with its own receipt, as runTask runs one. `admit(i)`: asked in the slot as task i is about to
   * start (the payment gate's credit rule); a refusal answers it instead. `ran(i)`: told as each
   * ends, before the next starts. A task refused before running (its checks, cancelled before it
   * started, no slot, a refusal of `admit`) is `{ refused }`; once the bundle ran `cutMs`
   * (TASK_BUNDLE_CUT_MS), or its outputs reached `cutBytes`, or a drain began, no further task starts: the rest are LEASE_SLOTS_BUSY
   * (not run: the submitter sends them again).
   */
  async runBundle (tasks: readonly dbc.task.v1.ITask[], opts: RunBundleOptions = {}): Promise<BundleOutcome[]> {
    // every path below fills each entry (an Error each up front cost a stack trace per task)
    const out = new Array<BundleOutcome>(tasks.length)
    if (tasks.length === 0) return out
    const firstId = toHex(tasks[0].taskId ?? new Uint8Array(0))
    // a draining peer starts nothing more: the bundle waits for the stop (see drain())
    const hold = this.drainHold
    if (hold !== undefined && !this.stopping) {
      this.heldCount += tasks.length
      try { await heldUntil(hold.until, allAborted(opts.signals, tasks.length)) } finally { this.heldCount -= tasks.length }
      if (!this.stopping) return tasks.map(() => ({ refused: new ExecutorError(ExecutorErrorCode.CANCELLED, `task ${firstId}: cancelled while this peer drained`) }))
    }
    // a stopping peer runs nothing more: PEER_STOPPED tells the submitter the copy was not run (it
    // waits for this provider to come back), not that the provider failed it
    if (this.stopping) return tasks.map(t => ({ refused: new ExecutorError('PEER_STOPPED', `task ${toHex(t.taskId ?? new Uint8Array(0))}: the compute peer is stopping`) }))
    // each task is checked alone; the slot fits the largest memory of those that passed
    const ctx = this.runContext()
    const checked: Array<CheckedTask | undefined> = []
    const own: Array<{ controller: AbortController, detach: () => void } | undefined> = []
    const bundle = new AbortController()
    let live = 0
    try {
      for (const [i, task] of tasks.entries()) {
        try {
          const t = validateTask(ctx, task, opts.resources)
          if (this.running.has(t.taskId)) throw new ExecutorError('TASK_DUPLICATE', `task ${t.taskId} is already queued or running here`)
          checked[i] = t
          const controller = new AbortController()
          const outer = opts.signals?.[i]
          const onOuterAbort = (): void => controller.abort(outer?.reason)
          outer?.addEventListener('abort', onOuterAbort, { once: true })
          if (outer?.aborted === true) controller.abort(outer.reason)
          // the slot's wait ends once every task of the bundle is cancelled (counted after this loop, which never awaits)
          if (!controller.signal.aborted) { live++; controller.signal.addEventListener('abort', () => { if (--live === 0) bundle.abort(controller.signal.reason) }, { once: true }) }
          own[i] = { controller, detach: () => outer?.removeEventListener('abort', onOuterAbort) }
          this.running.set(t.taskId, controller)
        } catch (err) {
          out[i] = { refused: err as Error }
        }
      }
      const first = checked.find(t => t !== undefined)
      if (first === undefined) return out
      if (live === 0) bundle.abort(new Error('every task of the bundle was cancelled'))
      const slots = this.slots()
      const demand = { ...first.demand, memoryMib: Math.max(...checked.map(t => t?.demand.memoryMib ?? 0)) }
      let grant: SlotGrant
      try {
        grant = await slots.acquire(first.taskId, demand, { signal: bundle.signal })
      } catch (err) {
        for (const i of checked.keys()) if (checked[i] !== undefined) out[i] = { refused: err as Error }
        return out
      }
      const gpuModel = grant.gpuIndexes.length > 0 ? slots.ledger.capacity.gpus.find(g => g.index === grant.gpuIndexes[0])?.model ?? '' : ''
      const receiptOf = { policy: this.policy, sign: this.sign, provider: this.peerId, payoutAddress: this.init.payoutAddress, consumer: opts.consumer, unsignedReceipt: opts.unsignedReceipt, gpuModel }
      const cutMs = opts.cutMs ?? Infinity
      const cutBytes = opts.cutBytes ?? Infinity
      const t0 = performance.now()
      /** Output bytes of the bundle's tasks so far: held until the bundle ends (its results go out together). */
      let outBytes = 0
      let ok = true
      try {
        // tiny tasks of one module (the executor runs them in one go: wasm, one worker message each
        // way): those the admission takes together run at once, the rest one by one below
        const runnable = checked.flatMap((t, i) => t !== undefined ? [i] : [])
        if (opts.onProgress === undefined && this.drainHold === undefined && !this.stopping && runsAtOnce(runnable.map(i => checked[i]!))) {
          const r = await bundleAtOnce({ ctx, grant, signal: bundle.signal, receiptOf, out, opts: { ...opts, cutMs, cutBytes }, peer: this.atOnce }, runnable.map(i => ({ i, t: checked[i]!, signal: own[i]!.controller.signal })))
          ok = r.ok
          outBytes = r.outBytes
        }
        for (const [i, t] of checked.entries()) {
          if (t === undefined || out[i] !== undefined) continue
          const signal = own[i]!.controller.signal
          if (signal.aborted) { out[i] = { refused: new ExecutorError(ExecutorErrorCode.CANCELLED, `task ${t.taskId} was cancelled before it started`) }; continue }
          // no further task of the bundle once it ran its cut, or this peer began to drain or stop
          const cut = t !== first && (performance.now() - t0 >= cutMs || outBytes >= cutBytes || this.drainHold !== undefined || this.stopping)
          if (cut) { out[i] = { refused: new ExecutorError('LEASE_SLOTS_BUSY', `task ${t.taskId}: not started: its bundle ran ${Math.round(performance.now() - t0)} ms already in its slot (its outputs ${outBytes} bytes), or this provider is stopping (send it again)`) }; continue }
          const refusal = opts.admit === undefined ? undefined : await opts.admit(i)
          if (refusal !== undefined) { out[i] = { refused: refusal }; continue }
          this.executingCount++
          let run: TaskRun
          try {
            run = await runInSlot(ctx, t, grant, { signal, stopping: () => this.stopping, slots, onProgress: tasks.length === 1 ? opts.onProgress : undefined })
          } finally { this.executingCount-- }
          this.ranCount++
          ok &&= run.ok
          const outcome = taskOutcome(receiptOf, t, grant, run)
          out[i] = outcome
          outBytes += outcome.result.output?.length ?? 0
          opts.ran?.(i, outcome)
        }
      } finally {
        slots.release(first.taskId, ok)
      }
      return out
    } finally {
      for (const [i, t] of checked.entries()) {
        if (t === undefined) continue
        own[i]?.detach()
        if (this.running.get(t.taskId) === own[i]?.controller) this.running.delete(t.taskId)
      }
    }
  }

  private runContext (): TaskRunContext {
    return { policy: this.policy, executors: this.executors, available: this.available, unavailable: this.unavailable, defaultMemoryLimitMib: this.init.defaultMemoryLimitMib, maxOutputBytes: this.init.maxOutputBytes }
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
