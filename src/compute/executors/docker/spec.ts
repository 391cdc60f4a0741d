// What a task's container is created with: limits from the task's resources, no network unless
// asked and allowed, a read-only root with a writable /task, a non-root user, the provider's
// labels, and the slot's GPUs. Pure (no engine calls), so each field is unit-tested.
import type Docker from 'dockerode'
import { CONTAINER_DEFAULTS, type ContainerSettings } from './settings.js'

export interface ContainerPlan {
  taskId: string
  /** The image id (sha256:…) the allow-list check resolved: a tag moved since cannot swap it. */
  imageId: string
  /** The task's entry, given to the image's program as DBC_ENTRY (data: the image names the program). */
  entry: string
  /** Host path of the task's input file, bound read-only at /task/input. */
  inputPath: string
  memoryLimitMib: number
  cpus: number
  gpuIndexes: number[]
  network: boolean
  /** The provider's peer id: the owner label, so it can find its own containers after a crash. */
  owner: string
  /** The engine's log of the container, read once it has exited: its driver and the most bytes it keeps on disk. */
  log: ContainerLog
}

/**
 * The container's log on the engine: Podman's k8s-file (conmon writes it; byte-exact for binary
 * output) or Docker's local driver (protobuf entries, byte-exact; json-file would replace bytes that
 * are not UTF-8). Either keeps one file of at most maxBytes (past it the file starts over, which the
 * executor detects) and goes with the container when it is removed.
 */
export interface ContainerLog { driver: 'k8s-file' | 'local', maxBytes: number }

export function logConfig (log: ContainerLog): Docker.HostConfig['LogConfig'] {
  const size = String(Math.max(1, Math.floor(log.maxBytes)))
  if (log.driver === 'k8s-file') return { Type: 'k8s-file', Config: { 'max-size': size } }
  return { Type: 'local', Config: { 'max-size': size, 'max-file': '1', compress: 'false' } }
}

/** Device requests for the slot's GPUs ("nvidia": Docker's --gpus; "cdi": CDI names, as Podman takes them). */
export function gpuDeviceRequests (gpuIndexes: number[], mode: 'nvidia' | 'cdi'): Pick<Docker.HostConfig, 'DeviceRequests' | 'Devices'> {
  if (gpuIndexes.length === 0) return {}
  if (mode === 'cdi') return { Devices: gpuIndexes.map(i => ({ PathOnHost: `nvidia.com/gpu=${i}`, PathInContainer: '', CgroupPermissions: 'rwm' })) }
  return { DeviceRequests: [{ Driver: 'nvidia', Count: 0, DeviceIDs: gpuIndexes.map(String), Capabilities: [['gpu']], Options: {} }] }
}

export function containerCreateOptions (plan: ContainerPlan, settings: ContainerSettings = {}): Docker.ContainerCreateOptions {
  const memory = plan.memoryLimitMib * 1024 * 1024
  return {
    Image: plan.imageId,
    // no Cmd: the image's own entrypoint and command run; the task only sends data
    Env: [`DBC_TASK_ID=${plan.taskId}`, `DBC_ENTRY=${plan.entry}`, 'DBC_INPUT=/task/input', 'DBC_TASK_DIR=/task', 'HOME=/task', 'TMPDIR=/tmp'],
    User: settings.user ?? CONTAINER_DEFAULTS.user,
    WorkingDir: '/task',
    Labels: { [CONTAINER_DEFAULTS.ownerLabel]: plan.owner, [CONTAINER_DEFAULTS.taskLabel]: plan.taskId },
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    OpenStdin: false,
    NetworkDisabled: !plan.network,
    HostConfig: {
      Memory: memory,
      MemorySwap: memory, // no swap beyond the limit
      NanoCpus: Math.round(plan.cpus * 1e9),
      PidsLimit: settings.pidsLimit ?? CONTAINER_DEFAULTS.pidsLimit,
      NetworkMode: plan.network ? 'bridge' : 'none',
      ReadonlyRootfs: true,
      // /task is a tmpfs (bounded, charged to the container's memory, gone with it), the input bound into it read-only
      Tmpfs: { '/task': `rw,nosuid,nodev,size=${plan.memoryLimitMib}m,mode=1777`, '/tmp': `rw,nosuid,nodev,size=${CONTAINER_DEFAULTS.tmpMib}m,mode=1777` },
      Binds: [`${plan.inputPath}:/task/input:ro`],
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      AutoRemove: false, // removed by the executor once its result is read, on every path
      // the output is read from this bounded log once the container has exited; removed with the container
      LogConfig: logConfig(plan.log),
      ...gpuDeviceRequests(plan.gpuIndexes, settings.gpus ?? CONTAINER_DEFAULTS.gpus)
    }
  }
}
