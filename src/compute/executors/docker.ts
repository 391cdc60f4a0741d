// The `docker` executor: a task runs in a container from one of the provider's own images,
// through the Docker Engine API (Docker, or Podman's compatible service) with dockerode.
// The task's code names the image (by the provider's list, pinned by digest) and whether it asks
// for a network; its entry reaches the image's program as DBC_ENTRY; its input is /task/input;
// its stdout, read from the engine's bounded log of the container once it has exited, is the
// output (the attach stream only watches it run, to stop it at the output cap). Limits and the
// container's shape: docker/spec.ts.
// Every container is removed on every path (end, timeout, cancel, output cap, shutdown), and one
// left by a crash is removed at the next start (they carry the provider's label).
import type Docker from 'dockerode'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex, Readable } from 'node:stream'
import { ExecutorError } from '../../errors.js'
import { ContainerCodeError, parseContainerCode } from '../../core/compute/container-code.js'
import { cancelledError, executorError, ExecutorErrorCode, type Availability, type ExecutionRequest, type ExecutionResult, type Executor, type RunOptions } from './types.js'
import { CONTAINER_DEFAULTS, resolveEndpoint, type ContainerSettings, type EngineEndpoint } from './docker/settings.js'
import { containerCreateOptions, type ContainerLog } from './docker/spec.js'
import { StreamDemuxer } from './docker/stream.js'
import { withTaskLog, logSnippet, type TaskLog } from './output-tail.js'
import { checkImage, findAllowedImage, notAllowedError } from './docker/images.js'

export { demuxDockerStream, StreamDemuxer } from './docker/stream.js'
export type { ContainerSettings, AllowedImage } from './docker/settings.js'

export interface DockerExecutorInit {
  enabled?: boolean
  settings?: ContainerSettings
  /** Shorthand for settings.socket. */
  socketPath?: string
  /** The provider's peer id (hex): the value of the owner label on its containers. */
  owner?: string
  /** Host folder for the per-task input files (bound into the containers). Default <tmp>/dbc-containers. */
  workDir?: string
  /** An engine client (tests); default one for the settings' endpoint. */
  engine?: Docker
}

type StopReason = 'timeout' | 'cancel' | 'overflow' | 'shutdown'

/** How long the engine gets for a ping, and how long the log of an exited container may stall while it streams. */
const PING_TIMEOUT_MS = 10_000
const LOG_STALL_MS = 30_000
const MIB = 1024 * 1024
const WAIT_GRACE_MS = 60_000
/**
 * The longest a log read may take in all (a log of very short lines streams slowly: Podman ~20 s a
 * MiB of one-byte lines); past it the copy fails EXECUTOR_UNAVAILABLE. A timed-out container's log is
 * read only for its stderr tail, for at most LOG_READ_AFTER_TIMEOUT_MS.
 */
const LOG_READ_MAX_MS = 120_000
const LOG_READ_AFTER_TIMEOUT_MS = 5_000
/** The task's entry travels as DBC_ENTRY: printable text, bounded. */
const ENTRY = /^[\x20-\x7e]{0,256}$/

export class DockerExecutor implements Executor {
  readonly name = 'docker' as const
  readonly endpoint: EngineEndpoint
  private readonly enabled: boolean
  private readonly settings: ContainerSettings
  private readonly owner: string
  private readonly workDir: string
  private engineClient?: Promise<Docker>
  private driver?: Promise<ContainerLog['driver']>
  private readonly givenEngine?: Docker
  private readonly inflight = new Map<string, { stop: (why: StopReason) => void, done: Promise<unknown> }>()
  private closed = false
  private runs = 0

  constructor (init: DockerExecutorInit = {}) {
    this.enabled = init.enabled ?? true
    this.settings = { ...init.settings, socket: init.settings?.socket ?? init.socketPath }
    this.endpoint = resolveEndpoint(this.settings.socket)
    this.owner = init.owner ?? 'dbc'
    this.workDir = init.workDir ?? join(tmpdir(), 'dbc-containers')
    this.givenEngine = init.engine
  }

  /** The engine client; dockerode (with its gRPC stack, ~1 s to load) loads only when containers are used. */
  private async engine (): Promise<Docker> {
    this.engineClient ??= this.givenEngine !== undefined ? Promise.resolve(this.givenEngine) : engineFor(this.endpoint)
    return await this.engineClient
  }

  private get images (): Record<string, { image: string, digest: string }> {
    return this.settings.images ?? {}
  }

  async availability (): Promise<Availability> {
    if (!this.enabled) return { available: false, reason: 'the docker executor is off in the provider policy' }
    if (this.endpoint.kind === 'socket' && !existsSync(this.endpoint.socketPath)) {
      return { available: false, reason: `no Docker Engine socket at ${this.endpoint.socketPath}; start Docker or Podman's service (scripts/setup-podman.sh) or set containers.socket / DOCKER_HOST` }
    }
    try {
      await withTimeout((await this.engine()).ping(), PING_TIMEOUT_MS, `no answer within ${PING_TIMEOUT_MS} ms`)
    } catch (err) {
      return { available: false, reason: `the Docker Engine at ${this.endpoint.describe} does not answer: ${(err as Error).message}` }
    }
    const names = Object.keys(this.images)
    if (names.length === 0) return { available: false, reason: 'the provider lists no images (containers.images in the node config): container tasks name one of those' }
    const problems: string[] = []
    const engine = await this.engine()
    for (const name of names) {
      const c = await checkImage(engine, name, this.images[name])
      if (!c.ok) problems.push(c.reason)
    }
    if (problems.length === names.length) return { available: false, reason: `none of the listed images can run: ${problems.join('; ')}` }
    return { available: true }
  }

  /** Removes the containers (and input folders) a previous run of this provider left, e.g. after kill -9. */
  async start (): Promise<{ removed: number }> {
    const engine = await this.engine()
    const left = await engine.listContainers({ all: true, filters: { label: [`${CONTAINER_DEFAULTS.ownerLabel}=${this.owner}`] } })
    await Promise.all(left.map(async c => { await removeContainer(engine.getContainer(c.Id)) }))
    const dirs = await readdir(this.workDir).catch(() => [] as string[])
    await Promise.all(dirs.filter(d => d.startsWith('ctr-')).map(async d => { await rm(join(this.workDir, d), { recursive: true, force: true }) }))
    return { removed: left.length }
  }

  async run (req: ExecutionRequest, opts: RunOptions = {}): Promise<ExecutionResult> {
    if (!this.enabled) throw executorError(ExecutorErrorCode.DISABLED, 'the docker executor is off in the provider policy')
    if (this.closed) throw executorError(ExecutorErrorCode.CANCELLED, `task ${req.taskId}: the provider is stopping`)
    if (opts.signal?.aborted === true) throw cancelledError(req.taskId, opts.signal)
    let code
    try {
      code = parseContainerCode(req.code)
    } catch (err) {
      if (!(err instanceof ContainerCodeError)) throw err
      throw executorError(ExecutorErrorCode.BAD_MODULE, `task ${req.taskId}: ${err.message}`, 'a container task\'s code is {"image": NAME, "network": false}, as `dbc job submit` writes it')
    }
    if (!ENTRY.test(req.entry)) throw executorError(ExecutorErrorCode.BAD_MODULE, `task ${req.taskId}: its entry must be at most 256 printable ASCII characters (it reaches the image's program as DBC_ENTRY)`)
    const found = findAllowedImage(this.images, code.image)
    if (found === undefined) throw notAllowedError(code.image, this.images)
    if (code.network && this.settings.network !== true) {
      throw executorError(ExecutorErrorCode.NETWORK_NOT_ALLOWED, `task ${req.taskId} asks for a network and this provider gives container tasks none`, 'run it without resources.network, or on a provider whose containers.network is true')
    }
    void this.logDriver().catch(() => {}) // asked while the image is checked, not in the task's time
    const image = await checkImage(await this.engine(), found.name, found.allowed)
    if (!image.ok) throw new ExecutorError(image.code, `task ${req.taskId}: ${image.reason}`, { hint: image.hint })
    return await this.runContainer(req, opts, image.imageId, code.network)
  }

  /** The log driver this engine has: Podman's k8s-file, else Docker's local (asked once). */
  private async logDriver (): Promise<ContainerLog['driver']> {
    this.driver ??= (async () => {
      const v = await (await this.engine()).version() as { Components?: Array<{ Name?: string }> }
      return (v.Components ?? []).some(c => /podman/i.test(c.Name ?? '')) ? 'k8s-file' : 'local'
    })()
    return await this.driver.catch((err: unknown) => { this.driver = undefined; throw err })
  }

  private async runContainer (req: ExecutionRequest, opts: RunOptions, imageId: string, network: boolean): Promise<ExecutionResult> {
    const started = performance.now()
    await mkdir(this.workDir, { recursive: true, mode: 0o700 })
    const dir = await mkdtemp(join(this.workDir, 'ctr-'))
    const inputPath = join(dir, 'input')
    await writeFile(inputPath, req.input, { mode: 0o444 })
    const cpus = req.cpus ?? 1
    let container: Docker.Container | undefined
    let stopReason: StopReason | undefined
    let running = false
    /** When the container exited (wait answered): the end of the billed time. */
    let exitedAt: number | undefined
    const reading: { stop?: () => void } = {}
    const stop = (why: StopReason): void => {
      stopReason ??= why
      if (running) void container?.kill().catch(() => {}) // already ended: the engine answers 304/409
      if (why === 'cancel' || why === 'shutdown') reading.stop?.() // its log is no longer wanted
    }
    // the attach stream only watches while it runs (stdout counted, not kept: past the cap the
    // container is stopped at once); Podman's attach can miss a quick container's output, the log cannot
    const live = new StreamDemuxer({ maxStdoutBytes: req.maxOutputBytes, stderrTailBytes: CONTAINER_DEFAULTS.stderrTailBytes, keepStdout: false, onOverflow: () => { stop('overflow') } })
    let log: StreamDemuxer | undefined
    const stderrLog = (): TaskLog => (log ?? live).stderrLog()
    const onAbort = (): void => { stop('cancel') }
    let resolveDone!: () => void
    const tracked = { stop, done: new Promise<void>(resolve => { resolveDone = resolve }) }
    const key = `${req.taskId}#${++this.runs}`
    this.inflight.set(key, tracked)
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const timer = setTimeout(() => { stop('timeout') }, req.timeoutMs)
    let attached: Duplex | undefined
    try {
      const logMaxBytes = this.settings.logMaxMib !== undefined ? this.settings.logMaxMib * MIB : CONTAINER_DEFAULTS.logPerOutputByte * req.maxOutputBytes + CONTAINER_DEFAULTS.logStderrMib * MIB
      try {
        const plan = { taskId: req.taskId, imageId, entry: req.entry, inputPath, memoryLimitMib: req.memoryLimitMib, cpus, gpuIndexes: req.gpuIndexes ?? [], network, owner: this.owner, log: { driver: await this.logDriver(), maxBytes: logMaxBytes } }
        container = await (await this.engine()).createContainer(containerCreateOptions(plan, this.settings))
      } catch (err) {
        throw engineError(req.taskId, 'create a container', err)
      }
      attached = await container.attach({ stream: true, stdout: true, stderr: true }).then(s => s as unknown as Duplex, () => undefined)
      attached?.on('data', (d: Buffer) => { if (!live.overflowed) live.push(d) })
      attached?.on('error', () => {})
      let status = -1
      if (stopReason === undefined) {
        try {
          await container.start()
        } catch (err) {
          throw engineError(req.taskId, 'start its container', err)
        }
        running = true
        if (stopReason !== undefined) void container.kill().catch(() => {}) // stopped while starting
        // the wall-time timer kills it; the extra bound only guards against an engine that never answers
        const w = await withTimeout(container.wait() as Promise<{ StatusCode: number }>, req.timeoutMs + WAIT_GRACE_MS, `no exit status ${WAIT_GRACE_MS} ms past the time limit`)
          .catch((err: unknown) => { throw engineError(req.taskId, 'wait for its container', err) })
        status = w.StatusCode
        exitedAt = performance.now()
        if (stopReason === undefined) clearTimeout(timer) // it ended within its time: reading its log is not its time
      }
      // the output is what the engine logged, read once the container has exited (a timed-out one's log gives its stderr)
      const whole = stopReason === undefined || stopReason === 'timeout' ? await this.readLog(container, (log = new StreamDemuxer({ maxStdoutBytes: req.maxOutputBytes, stderrTailBytes: CONTAINER_DEFAULTS.stderrTailBytes })), reading, stopReason === 'timeout' ? LOG_READ_AFTER_TIMEOUT_MS : LOG_READ_MAX_MS) : false
      const read = log ?? live
      // billed up to the container's exit: the engine's time reading its log is not the task's
      const wallMs = (exitedAt ?? performance.now()) - started
      const data = { exitCode: status, stdoutBytes: Math.max(live.stdoutBytes, read.stdoutBytes), wallMs: Math.round(wallMs) }
      if (stopReason === 'overflow' || read.overflowed) throw new ExecutorError(ExecutorErrorCode.OUTPUT_TOO_LARGE, `task ${req.taskId}: output passed the limit of ${req.maxOutputBytes} bytes; ${stopReason === 'overflow' ? `the container was stopped after ${live.stdoutBytes} bytes` : 'its log was read no further'}`, { hint: 'write less to stdout, or split the work into more tasks', data })
      if (stopReason === 'timeout') throw new ExecutorError(ExecutorErrorCode.TIMEOUT, `task ${req.taskId} ran past its wall-time limit of ${req.timeoutMs} ms and its container was stopped`, { hint: 'raise task.timeoutMs or split the work', data })
      if (stopReason === 'cancel') throw cancelledError(req.taskId, opts.signal)
      if (stopReason === 'shutdown') throw executorError(ExecutorErrorCode.CANCELLED, `task ${req.taskId}: the provider is stopping`)
      const stderr = logSnippet(stderrLog())
      if (status === 137) {
        const oom = await container.inspect().then(i => i.State.OOMKilled, () => false)
        throw new ExecutorError(ExecutorErrorCode.MEMORY_LIMIT, `task ${req.taskId}: its container was killed (SIGKILL)${oom ? ' for using more than' : ', which here means it reached'} its memory limit of ${req.memoryLimitMib} MiB`, { hint: 'raise resources.memoryMib', data })
      }
      if (status !== 0) throw new ExecutorError(ExecutorErrorCode.EXIT_CODE, `task ${req.taskId}: the container exited with code ${status}${stderr === '' ? '' : `: ${stderr}`}`, { data })
      if (!whole) throw new ExecutorError(ExecutorErrorCode.UNAVAILABLE, `task ${req.taskId}: the engine's log of the container could not be read to its end (it stalled ${LOG_STALL_MS} ms, took over ${LOG_READ_MAX_MS} ms in all, or was cut; ${read.stdoutBytes} stdout bytes read)`, { hint: 'the container engine is overloaded; the job runs the task again', data })
      // the attach stream never delivers stdout that was not written (its stderr can carry the engine's own
      // errors: Podman wrote "Error: read unixpacket ...: connection reset by peer"): it saw more stdout than
      // the log holds only when the log passed its bound and started over (its start is gone): no answer,
      // never a cut one passed off as whole. Stderr the log lost costs nothing: only its tail is kept
      if (live.stdoutBytes > read.stdoutBytes) {
        throw new ExecutorError(ExecutorErrorCode.OUTPUT_TOO_LARGE, `task ${req.taskId}: its output and stderr passed the engine's log bound of ${logMaxBytes} bytes, so the log lost its start (the attach stream saw ${live.stdoutBytes} stdout bytes, the log holds ${read.stdoutBytes})`, { hint: 'write less (stderr counts too), or raise containers.logMaxMib', data })
      }
      // billed for the CPUs the container reserved: the engine keeps no CPU time once it is removed
      return { output: read.stdout(), wallMs, cpuMs: wallMs * cpus, log: read.stderrLog() }
    } catch (err) {
      // what the container wrote before it failed travels with the failure (its logs)
      throw withTaskLog(err as Error, stderrLog())
    } finally {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      attached?.destroy()
      if (container !== undefined) await removeContainer(container)
      await rm(dir, { recursive: true, force: true }).catch(() => {})
      this.inflight.delete(key)
      resolveDone()
    }
  }

  /**
   * Reads the exited container's log through `demux` (stdout up to its cap: past it, no further).
   * True when the engine ended the stream: the log was read whole (or to the cap). reading.stop ends it early.
   */
  private async readLog (container: Docker.Container, demux: StreamDemuxer, reading: { stop?: () => void }, maxMs: number): Promise<boolean> {
    const stream = await logStream(container).catch(() => undefined)
    if (stream === undefined) return false
    let idle: ReturnType<typeof setTimeout> | undefined
    let total: ReturnType<typeof setTimeout> | undefined
    return await new Promise<boolean>(resolve => {
      reading.stop = () => { resolve(false); stream.destroy() }
      total = setTimeout(() => { resolve(false); stream.destroy() }, maxMs)
      // a long log of short lines streams slowly (Podman: ~10-40 us a line): only a stalled read fails
      const stalled = (): void => { clearTimeout(idle); idle = setTimeout(() => { resolve(false); stream.destroy() }, LOG_STALL_MS) }
      stalled()
      stream.on('end', () => { resolve(true) })
      stream.on('close', () => { resolve(demux.overflowed) })
      stream.on('error', () => { resolve(demux.overflowed) })
      stream.on('data', (d: Buffer) => {
        stalled()
        demux.push(d)
        if (demux.overflowed) stream.destroy()
      })
    }).finally(() => { clearTimeout(idle); clearTimeout(total); stream.destroy() })
  }

  /** Stops every running container and waits until each is removed. */
  async close (): Promise<void> {
    this.closed = true
    const running = [...this.inflight.values()]
    for (const r of running) r.stop('shutdown')
    await withTimeout(Promise.allSettled(running.map(async r => await r.done)), 30_000, '').catch(() => {})
  }
}

async function engineFor (e: EngineEndpoint): Promise<Docker> {
  const { default: Docker } = await import('dockerode')
  if (e.kind === 'socket') return new Docker({ socketPath: e.socketPath })
  if (e.kind === 'tcp') return new Docker({ host: e.host, port: e.port, protocol: 'http' })
  return new Docker() // docker-modem reads DOCKER_HOST and its TLS variables
}

function engineError (taskId: string, what: string, err: unknown): ExecutorError {
  const status = (err as { statusCode?: number }).statusCode
  const json = (err as { json?: { message?: string } }).json
  const message = json?.message ?? (err as Error).message
  return new ExecutorError(ExecutorErrorCode.UNAVAILABLE, `task ${taskId}: the engine could not ${what}${status === undefined ? '' : ` (HTTP ${status})`}: ${message}`, { hint: 'check the provider\'s container engine', cause: err })
}

/** Force-removes a container (it may still be running); tries a few times, as the engine may be busy. */
async function removeContainer (c: Docker.Container): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await c.remove({ force: true, v: true })
      return
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return
      await new Promise(resolve => setTimeout(resolve, 200 * (attempt + 1)))
    }
  }
}

/**
 * The log of a container, as a stream (dockerode buffers a whole log unless it follows, and
 * Podman 4.3's follow of an exited container's log can end before the log does: 85 KB of 9.4 MB).
 */
async function logStream (c: Docker.Container): Promise<Readable> {
  return await new Promise((resolve, reject) => {
    c.modem.dial({ path: `/containers/${c.id}/logs?`, method: 'GET', isStream: true, statusCodes: { 200: true, 404: 'no such container', 500: 'server error' }, options: { stdout: true, stderr: true, follow: false } },
      (err: unknown, s: unknown) => { if (err != null) reject(err); else resolve(s as Readable) })
  })
}

async function withTimeout<T> (p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(message)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}
