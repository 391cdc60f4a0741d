// One task of a ComputePeer, the parts that do not hold the peer's state: its checks before it
// may take a slot (validateTask), its run on the executor inside a slot (runInSlot) and the
// result with its receipt (taskOutcome). ComputePeer.runBundle (index.ts) holds the slot and
// runs a bundle's tasks one after another through these; runTask is its one-task case.
import { dbc } from '../wire/gen/wire.js'
import { toHex } from '../core/identity/index.js'
import { demandOf, gpuPriceFor, type ExecutorName, type ProviderPolicy } from '../core/compute/offer-policy.js'
import { agreedPricingVersion } from '../core/compute/pricing.js'
import type { SlotDemand, SlotGrant } from '../core/compute/slot-ledger.js'
import { buildEncodedReceipt, signReceipt, type Ed25519Signer } from '../core/settlement/receipt.js'
import { ExecutorError } from '../errors.js'
import { taskLogOf, type TaskLog } from './executors/output-tail.js'
import { ExecutorErrorCode, type ExecutionRequest, type Executor } from './executors/types.js'
import type { SlotManager } from './slots.js'
import { nodeSha256 } from '../crypto/hash.js'

/** What a task needs from its peer to be checked and run. */
export interface TaskRunContext {
  policy: ProviderPolicy
  executors: ReadonlyMap<ExecutorName, Executor>
  available: readonly ExecutorName[]
  unavailable: Partial<Record<ExecutorName, string>>
  defaultMemoryLimitMib?: number
  maxOutputBytes?: number
}

/** A task that passed its checks: what its run needs. */
export interface CheckedTask {
  task: dbc.task.v1.ITask
  taskId: string
  executor: Executor
  input: Uint8Array
  timeoutMs: number
  memoryLimitMib: number
  demand: SlotDemand
}

/** The checks a task passes before it may take a slot; throws the ExecutorError that refuses it. */
export function validateTask (ctx: TaskRunContext, task: dbc.task.v1.ITask, resources: dbc.task.v1.IResources | undefined): CheckedTask {
  const taskId = toHex(task.taskId ?? new Uint8Array(0))
  const { policy } = ctx
  const executorName = (task.executor == null || task.executor === '' ? 'wasm' : task.executor) as ExecutorName
  const executor = ctx.executors.get(executorName)
  if (executor === undefined || !policy.executors.includes(executorName)) throw new ExecutorError(ExecutorErrorCode.DISABLED, `task ${taskId}: executor "${executorName}" is not enabled on this provider (enabled: ${policy.executors.join(', ')})`, { hint: 'send it as a wasm task or to another provider' })
  if (!ctx.available.includes(executorName)) throw new ExecutorError(ExecutorErrorCode.UNAVAILABLE, `task ${taskId}: executor "${executorName}" is not available here: ${ctx.unavailable[executorName] ?? 'unknown reason'}`)
  const input = task.input ?? new Uint8Array(0)
  if (input.length > policy.maxInputBytes) throw new ExecutorError(ExecutorErrorCode.INPUT_TOO_LARGE, `task ${taskId}: input of ${input.length} bytes is above this provider's limit of ${policy.maxInputBytes} bytes`, { hint: 'split the input across more tasks' })
  const timeoutMs = (task.deadlineMs ?? 0) > 0 ? (task.deadlineMs ?? 0) : policy.maxTaskMs
  if (timeoutMs > policy.maxTaskMs) throw new ExecutorError('TASK_TOO_LONG', `task ${taskId}: deadline of ${timeoutMs} ms is above this provider's limit of ${policy.maxTaskMs} ms (provider.maxTask.wallSeconds)`, { hint: 'split the work into shorter tasks' })
  const cap = policy.maxTaskMemoryMib
  const defaultMemory = ctx.defaultMemoryLimitMib ?? 256
  const memoryLimitMib = (task.memoryLimitMib ?? 0) > 0 ? (task.memoryLimitMib ?? 0) : (cap > 0 ? Math.min(cap, defaultMemory) : defaultMemory)
  const demand: SlotDemand = { ...demandOf(resources), memoryMib: Math.max(memoryLimitMib, resources?.memoryMib ?? 0) }
  if (cap > 0 && demand.memoryMib > cap) throw new ExecutorError('TASK_MEMORY_TOO_LARGE', `task ${taskId}: ${demand.memoryMib} MiB of memory is above this provider's limit of ${cap} MiB per task (provider.maxTask.memoryMiB)`, { hint: 'lower resources.memoryMib or send it to another provider' })
  // an executor that never touches a GPU (wasm) holds none: the GPU stays free for a task that
  // can use it, and the receipt bills no GPU-seconds at the GPU price for CPU work
  if (executor.usesGpus === false) demand.gpus = 0
  return { task, taskId, executor, input, timeoutMs, memoryLimitMib, demand }
}

/** What a task's run on its executor measured. */
export interface TaskRun {
  ok: boolean
  output: Uint8Array
  error: string
  code: string
  wallMs: number
  cpuMs: number
  log?: TaskLog
  startedAt: number
  finishedAt: number
}

/** Runs a checked task on its executor in the slot `grant` holds; its failure is its result, never thrown. */
export async function runInSlot (ctx: TaskRunContext, t: CheckedTask, grant: SlotGrant, opts: { signal: AbortSignal, stopping: () => boolean, slots: SlotManager, onProgress?: (fraction: number) => void }): Promise<TaskRun> {
  const startedAt = Date.now()
  const t0 = performance.now()
  const { taskId } = t
  try {
    const r = await t.executor.run(requestOf(ctx, t, grant), { signal: opts.signal, onProgress: f => { opts.onProgress?.(f); opts.slots.emit({ type: 'progress', taskId, fraction: f }) } })
    return { ok: true, output: r.output, error: '', code: '', wallMs: r.wallMs, cpuMs: r.cpuMs, log: r.log, startedAt, finishedAt: Date.now() }
  } catch (err) {
    return failedRun(err, performance.now() - t0, { startedAt, finishedAt: Date.now() }, grant, opts.stopping)
  }
}

/** A task's failure as its run: cut short by this peer's stop, PEER_STOPPED; else the error's code. */
function failedRun (err: unknown, wallMs: number, at: { startedAt: number, finishedAt: number }, grant: SlotGrant, stopping: () => boolean): TaskRun {
  const e = err as ExecutorError
  // cut short by this peer's stop (aborted, or its executor closed under it: "the wasm
  // executor is closed"): not the task's failure, nor this provider's (found on real daemons)
  const code = stopping() ? 'PEER_STOPPED' : e.code ?? 'TASK_FAILED'
  // Without a measurement, a failed task is billed as if it used its CPU the whole time.
  return { ok: false, output: new Uint8Array(0), error: `${code}: ${e.message}`, code, wallMs, cpuMs: wallMs * grant.cpus, log: taskLogOf(err), startedAt: at.startedAt, finishedAt: at.finishedAt }
}

/**
 * A bundle's checked tasks (one executor with runBundle, one module, entry and limits: runsAtOnce) run in one go in the slot
 * `grant` holds: each task's TaskRun as runInSlot gives it, or undefined for one not started (cut:
 * the bundle ran its time or its output bytes). A failure of the whole (the worker died, the
 * watchdog, every task cancelled) fails each task with it. Never throws.
 */
export async function runBundleInSlot (ctx: TaskRunContext, ts: readonly CheckedTask[], grant: SlotGrant, opts: { signal?: AbortSignal, stopFlag?: Int32Array, stopping: () => boolean, cutMs: number, cutBytes: number }): Promise<Array<TaskRun | undefined>> {
  const executor = ts[0].executor
  const startedAt = Date.now()
  const t0 = performance.now()
  // one module, entry and limits (runsAtOnce): the first task's request, the others' inputs and ids
  const first = requestOf(ctx, ts[0], grant)
  const reqs = ts.map((t, k) => k === 0 ? first : { ...first, taskId: t.taskId, input: t.input, timeoutMs: t.timeoutMs })
  try {
    const rs = await executor.runBundle!(reqs, { signal: opts.signal, stopFlag: opts.stopFlag, cutMs: opts.cutMs, cutBytes: opts.cutBytes })
    return rs.map(r => 'cut' in r ? undefined : r.ok ? { ok: true, output: r.result.output, error: '', code: '', wallMs: r.result.wallMs, cpuMs: r.result.cpuMs, log: r.result.log, startedAt: r.startedAt, finishedAt: r.finishedAt } : failedRun(r.error, r.wallMs, r, grant, opts.stopping))
  } catch (err) {
    // the whole bundle's time is charged to each of its tasks (a failure bills its wall time)
    const at = { startedAt, finishedAt: Date.now() }
    const wallMs = performance.now() - t0
    return ts.map(() => failedRun(err, wallMs, at, grant, opts.stopping))
  }
}

/** What a checked task asks of its executor. */
function requestOf (ctx: TaskRunContext, t: CheckedTask, grant: SlotGrant): ExecutionRequest {
  const { task } = t
  return {
    taskId: t.taskId,
    code: task.code ?? new Uint8Array(0),
    codeHash: task.codeHash != null && task.codeHash.length > 0 ? toHex(task.codeHash) : undefined,
    entry: task.entry ?? '',
    input: t.input,
    timeoutMs: t.timeoutMs,
    memoryLimitMib: t.memoryLimitMib,
    maxOutputBytes: ctx.maxOutputBytes ?? ctx.policy.maxOutputBytes,
    gpuIndexes: grant.gpuIndexes,
    cpus: grant.cpus
  }
}

export interface TaskOutcome {
  result: dbc.task.v1.TaskResult
  receipt: dbc.receipt.v1.SignedReceipt
  /** The receipt as built, what `receipt.receipt` encodes (callers read it here instead of decoding those bytes). */
  usage: dbc.receipt.v1.UsageReceipt
}

/** The result of a task that ran, with its receipt (signed, or unsigned for a batch signature). */
export function taskOutcome (p: { policy: ProviderPolicy, sign: Ed25519Signer, provider: Uint8Array, payoutAddress?: string, consumer?: Uint8Array, unsignedReceipt?: boolean, gpuModel: string }, t: CheckedTask, grant: SlotGrant, run: TaskRun): TaskOutcome {
  const { task } = t
  const outputHash = nodeSha256(run.output)
  const { receipt, bytes } = buildEncodedReceipt({
    jobId: task.jobId ?? new Uint8Array(0),
    taskId: task.taskId ?? new Uint8Array(0),
    provider: p.provider,
    consumer: p.consumer ?? new Uint8Array(0),
    usage: { wallMs: run.wallMs, cpuMs: run.cpuMs, gpuSeconds: grant.gpuIndexes.length * run.wallMs / 1000, bytesIn: t.input.length + (task.code?.length ?? 0), bytesOut: run.output.length },
    prices: { priceGpuHour: grant.gpuIndexes.length > 0 ? gpuPriceFor(p.policy, p.gpuModel) ?? 0 : 0, priceCpuHour: p.policy.priceCpuHour },
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    outputHash,
    payoutAddress: p.payoutAddress,
    // rounded as the submitter checks it (an older one: version 0)
    pricingVersion: agreedPricingVersion(task.pricingVersion),
    sha256: nodeSha256
  })
  // the receipt is encoded once (buildEncodedReceipt): these bytes are what signReceipt would encode
  const signed = p.unsignedReceipt === true ? dbc.receipt.v1.SignedReceipt.create({ receipt: bytes, signature: new Uint8Array(0) }) : signReceipt(receipt, p.sign, bytes)
  const result = dbc.task.v1.TaskResult.create({ taskId: task.taskId ?? new Uint8Array(0), jobId: task.jobId ?? new Uint8Array(0), attempt: task.attempt ?? 0, ok: run.ok, output: run.output, outputHash, error: run.error, code: run.code, receipt: signed, ...(run.log !== undefined ? { stderr: run.log.stderr, stderrBytes: run.log.stderrBytes } : {}) })
  return { result, receipt: signed, usage: receipt }
}

/** Resolves when `until` does or `signal` aborts. */
export async function heldUntil (until: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return await until
  if (signal.aborted) return
  let onAbort = (): void => {}
  const aborted = new Promise<void>(resolve => { onAbort = resolve; signal.addEventListener('abort', onAbort, { once: true }) })
  try { await Promise.race([until, aborted]) } finally { signal.removeEventListener('abort', onAbort) }
}

/** A signal that aborts once each of `n` tasks' signals did (undefined when one has none: never). */
export function allAborted (signals: ReadonlyArray<AbortSignal | undefined> | undefined, n = signals?.length ?? 0): AbortSignal | undefined {
  if (n === 1) return signals?.[0]
  const all = signals?.slice(0, n) ?? []
  if (all.length < n || all.some(s => s === undefined)) return undefined
  const ac = new AbortController()
  let left = 0
  for (const s of all as AbortSignal[]) if (!s.aborted) { left++; s.addEventListener('abort', () => { if (--left === 0) ac.abort(s.reason) }, { once: true }) }
  if (left === 0) ac.abort(new Error('every task was cancelled'))
  return ac.signal
}
