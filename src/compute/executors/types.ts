// The one interface every executor implements, and what a task asks of it.
import { ExecutorError } from '../../errors.js'
import type { ExecutorName } from '../../core/compute/offer-policy.js'
import type { TaskLog } from './output-tail.js'

export type { ExecutorName }

export interface ExecutionRequest {
  /** For logs and errors. */
  taskId: string
  /** wasm: the module bytes. process: an optional script written to ./code. docker: the image and network ask (core/compute/container-code.ts). */
  code: Uint8Array
  /** sha256 of `code`, hex; the warm-module cache key. Computed when absent. */
  codeHash?: string
  /** wasm: exported function (default "run"; WASI modules use "_start"). process: the shell command. docker: DBC_ENTRY for the image's program. */
  entry: string
  input: Uint8Array
  /** Wall-time limit in ms. */
  timeoutMs: number
  /** Memory cap in MiB. */
  memoryLimitMib: number
  /** Largest output accepted, in bytes. */
  maxOutputBytes: number
  /** GPUs the slot granted (device indexes); process/docker tasks see only these. */
  gpuIndexes?: number[]
  /** CPUs the slot granted (docker: the container's CPU limit). Default 1. */
  cpus?: number
}

export interface ExecutionResult {
  output: Uint8Array
  wallMs: number
  /** CPU time the task used (thread or process CPU time; see the README for how each measures). */
  cpuMs: number
  /** What the task wrote to stderr (its tail, output-tail.ts), when the executor captures it. A failed
   * task's is on its error (taskLogOf). */
  log?: TaskLog
}

export interface RunOptions {
  signal?: AbortSignal
  /** Called with a fraction in [0, 1] when the task reports progress. */
  onProgress?: (fraction: number) => void
}

export interface Availability { available: boolean, reason?: string }

/** How a bundle's tasks run in one go (Executor.runBundle): when to start no further one. */
export interface BundleRunOptions {
  /** Aborts the whole bundle (each of its tasks was cancelled): every task fails CANCELLED. */
  signal?: AbortSignal
  /** No task starts once the bundle ran this long (ms), but the first. */
  cutMs: number
  /** No task starts once the outputs so far reach this many bytes. */
  cutBytes: number
  /** On a SharedArrayBuffer: no further task starts once it holds 1 (a drain began). */
  stopFlag?: Int32Array
}

/** One task of a bundle run in one go: its result, its failure, or `cut` (not started: send it again). */
export type BundleTaskResult =
  | { ok: true, result: ExecutionResult, startedAt: number, finishedAt: number }
  | { ok: false, error: ExecutorError, wallMs: number, startedAt: number, finishedAt: number }
  | { cut: true }

export interface Executor {
  readonly name: ExecutorName
  /** Whether this executor works on this machine now, and if not why. */
  availability: () => Promise<Availability>
  run: (req: ExecutionRequest, opts?: RunOptions) => Promise<ExecutionResult>
  /**
   * Runs a bundle's tasks (one module, entry and memory limit; requests in order) one after another
   * in one go, cheaper than a run() each (wasm: one message to the worker and one back). Its tasks
   * share the bundle's checks: the first always starts, the others only while `cutMs` and
   * `cutBytes` allow. A failure of the whole (the worker died, the watchdog, the signal) rejects.
   */
  runBundle?: (reqs: readonly ExecutionRequest[], opts: BundleRunOptions) => Promise<BundleTaskResult[]>
  /** false: this executor never touches a GPU (wasm), so its tasks hold no GPU and are billed no GPU-seconds. Default true. */
  readonly usesGpus?: boolean
  /** Clears what an earlier run of the provider left behind (docker: its labelled containers). */
  start?: () => Promise<unknown>
  /** Stops workers/processes; tasks in flight fail with CANCELLED. */
  close: () => Promise<void>
}

/** Error codes of ExecutorError, one per condition. */
export const ExecutorErrorCode = {
  TIMEOUT: 'TASK_TIMEOUT',
  MEMORY_LIMIT: 'TASK_MEMORY_LIMIT',
  BAD_MODULE: 'TASK_BAD_MODULE',
  NO_ENTRY: 'TASK_NO_ENTRY',
  INPUT_TOO_LARGE: 'TASK_INPUT_TOO_LARGE',
  OUTPUT_TOO_LARGE: 'TASK_OUTPUT_TOO_LARGE',
  TRAP: 'TASK_TRAP',
  EXIT_CODE: 'TASK_EXIT_CODE',
  CANCELLED: 'TASK_CANCELLED',
  UNAVAILABLE: 'EXECUTOR_UNAVAILABLE',
  /** docker: the task names an image the provider does not list, or whose digest differs. */
  IMAGE_NOT_ALLOWED: 'TASK_IMAGE_NOT_ALLOWED',
  /** docker: the task asks for a network and the provider gives none. */
  NETWORK_NOT_ALLOWED: 'TASK_NETWORK_NOT_ALLOWED',
  DISABLED: 'EXECUTOR_DISABLED'
} as const

export function executorError (code: string, message: string, hint?: string, cause?: unknown): ExecutorError {
  return new ExecutorError(code, message, { hint, cause })
}

export function cancelledError (taskId: string, signal?: AbortSignal): ExecutorError {
  return executorError(ExecutorErrorCode.CANCELLED, `task ${taskId} was cancelled`, undefined, signal?.reason)
}
