// The ComputePeer's option and answer shapes (index.ts re-exports them).
import type { dbc } from '../wire/gen/wire.js'
import type { GpuSpec } from '../core/compute/gpu-spec.js'
import type { ExecutorName, ProviderPolicy } from '../core/compute/offer-policy.js'
import type { ContainerSettings } from './executors/docker.js'
import type { TaskOutcome } from './task-run.js'

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

export interface RunBundleOptions extends Omit<RunTaskOptions, 'signal'> {
  /** Each task's own cancel signal, by index. */
  signals?: ReadonlyArray<AbortSignal | undefined>
  /** Asked in the bundle's slot as task i is about to start: an error refuses it (not run), undefined runs it. */
  admit?: (i: number, opts?: { again?: boolean }) => Promise<Error | undefined>
  /** Told as task i ran, before the next one starts. */
  ran?: (i: number, outcome: TaskOutcome) => void
  /** No further task starts once the bundle ran this long in its slot (TASK_BUNDLE_CUT_MS); default none. */
  cutMs?: number
  /**
   * No further task starts once the outputs of the bundle's tasks reach this many bytes (they are
   * held until the bundle ends; TASK_BUNDLE_CUT_BYTES or the lease's result bound); default none.
   */
  cutBytes?: number
}

/** A bundle's task: its outcome when it ran, else why it was not run (the error runTask throws). */
export type BundleOutcome = TaskOutcome | { refused: Error }
