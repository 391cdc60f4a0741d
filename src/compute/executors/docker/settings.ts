// The provider's container settings (the `containers` section of the node config): where the
// engine is, which images tasks may name, and the limits every container gets.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { TASK_LOG_TAIL_BYTES } from '../output-tail.js'

/** One image the operator allows, pinned by digest. */
export interface AllowedImage {
  /** Local reference, e.g. "localhost/dbc-test-busybox:3" or "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime". */
  image: string
  /** "sha256:…": the image id or a repo digest of it; a local image with another digest is refused. */
  digest: string
}

export interface ContainerSettings {
  /** The engine: "unix:///run/podman/podman.sock", a socket path, or "tcp://host:port". Default: DOCKER_HOST, then the usual sockets. */
  socket?: string
  /** The images tasks may run, by the name tasks use. No list, no container tasks. */
  images?: Record<string, AllowedImage>
  /** Tasks that ask for a network get one (a bridge network); otherwise they are refused. Default false. */
  network?: boolean
  /** Processes (and threads) one container may have. Default 256. */
  pidsLimit?: number
  /** The user tasks run as. Default "65534:65534" (nobody). */
  user?: string
  /** How GPUs are passed: "nvidia" (Docker with the NVIDIA Container Toolkit: device requests) or "cdi" (Podman: CDI device names). Default "nvidia". */
  gpus?: 'nvidia' | 'cdi'
  /**
   * The most disk one container's log (stdout and stderr, as the engine stores them) takes, MiB.
   * Default 2 x the task's output cap + 16 MiB (48 MiB at the 16 MiB default cap; it was 48 x, 784 MiB,
   * until review s8: any task program could hold that much engine disk per slot with stderr). Stdout
   * within the cap in long lines fits; a line-dense one (a k8s-file entry costs 45 bytes more than its
   * text) can outgrow it and fails the task TASK_OUTPUT_TOO_LARGE, never a wrong answer.
   */
  logMaxMib?: number
}

export const CONTAINER_DEFAULTS = {
  pidsLimit: 256,
  user: '65534:65534',
  gpus: 'nvidia' as const,
  /** The tmpfs at /tmp (the root file system is read-only). */
  tmpMib: 64,
  /** The engine's log of a container: this many bytes per byte of the task's output cap, plus logStderrMib (an entry costs its text + 45 bytes). */
  logPerOutputByte: 2,
  logStderrMib: 16,
  /** Kept of a task's stderr (its tail) for its log and error message. */
  stderrTailBytes: TASK_LOG_TAIL_BYTES,
  /** Label on every container this executor creates; its value is the provider's peer id. */
  ownerLabel: 'dbc.owner',
  taskLabel: 'dbc.task'
}

/** Where the engine is, as dockerode options, and a description for messages. */
export type EngineEndpoint =
  | { kind: 'socket', socketPath: string, describe: string }
  | { kind: 'tcp', host: string, port: number, describe: string }
  | { kind: 'env', describe: string }

/**
 * The engine endpoint: the config's socket, else DOCKER_HOST (dockerode reads it, TLS variables
 * included), else the first of Docker's and Podman's usual sockets that exists (Docker's when none).
 */
export function resolveEndpoint (socket: string | undefined, env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  const configured = socket !== undefined && socket !== '' ? socket : undefined
  if (configured === undefined && env.DOCKER_HOST !== undefined && env.DOCKER_HOST !== '') {
    if (env.DOCKER_HOST.startsWith('unix://')) return { kind: 'socket', socketPath: env.DOCKER_HOST.slice(7), describe: `${env.DOCKER_HOST} (DOCKER_HOST)` }
    return { kind: 'env', describe: `${env.DOCKER_HOST} (DOCKER_HOST)` }
  }
  if (configured !== undefined) {
    if (configured.startsWith('unix://')) return { kind: 'socket', socketPath: configured.slice(7), describe: configured }
    if (configured.startsWith('tcp://') || configured.startsWith('http://')) {
      const u = new URL(configured.replace(/^tcp:/, 'http:'))
      return { kind: 'tcp', host: u.hostname, port: Number(u.port === '' ? 2375 : u.port), describe: configured }
    }
    return { kind: 'socket', socketPath: configured, describe: configured }
  }
  const candidates = ['/var/run/docker.sock', '/run/podman/podman.sock']
  if (env.XDG_RUNTIME_DIR !== undefined) candidates.push(join(env.XDG_RUNTIME_DIR, 'podman', 'podman.sock'), join(env.XDG_RUNTIME_DIR, 'docker.sock'))
  const found = candidates.find(p => existsSync(p)) ?? candidates[0]
  return { kind: 'socket', socketPath: found, describe: found }
}
