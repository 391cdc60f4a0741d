// The `docker` executor: a container from an image, through the Docker Engine API on a unix
// socket. The input reaches the container base64-encoded in DBC_INPUT_B64 (so at most
// MAX_INPUT_BYTES; attaching stdin needs a hijacked connection), its stdout is the output.
// Untested here: this machine has no engine. Where no engine
// answers (as on machines without Docker), availability() says so and offers leave it out.
import { request } from 'node:http'
import { access } from 'node:fs/promises'
import { cancelledError, executorError, ExecutorErrorCode, type Availability, type ExecutionRequest, type ExecutionResult, type Executor, type RunOptions } from './types.js'

export interface DockerExecutorInit {
  socketPath?: string
  enabled?: boolean
}

const MAX_INPUT_BYTES = 64 * 1024

interface EngineResponse { status: number, body: Buffer }

export class DockerExecutor implements Executor {
  readonly name = 'docker' as const
  private readonly socketPath: string
  private readonly enabled: boolean

  constructor (init: DockerExecutorInit = {}) {
    this.socketPath = init.socketPath ?? '/var/run/docker.sock'
    this.enabled = init.enabled ?? true
  }

  private async call (method: string, path: string, body?: unknown, signal?: AbortSignal, timeoutMs = 5000): Promise<EngineResponse> {
    return await new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
      const req = request({ socketPath: this.socketPath, method, path, signal, timeout: timeoutMs, headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length } }, res => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error(`Docker Engine did not answer ${method} ${path} within ${timeoutMs} ms`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  async availability (): Promise<Availability> {
    if (!this.enabled) return { available: false, reason: 'the docker executor is off in the provider policy' }
    try {
      await access(this.socketPath)
    } catch {
      return { available: false, reason: `no Docker Engine socket at ${this.socketPath}; install and start Docker to offer the docker executor` }
    }
    try {
      const r = await this.call('GET', '/_ping', undefined, undefined, 2000)
      if (r.status !== 200) return { available: false, reason: `the Docker Engine at ${this.socketPath} answered /_ping with HTTP ${r.status}` }
      return { available: true }
    } catch (err) {
      return { available: false, reason: `the Docker Engine at ${this.socketPath} does not answer: ${(err as Error).message}` }
    }
  }

  async run (req: ExecutionRequest, opts: RunOptions = {}): Promise<ExecutionResult> {
    const a = await this.availability()
    if (!a.available) throw executorError(ExecutorErrorCode.UNAVAILABLE, `the docker executor is unavailable: ${a.reason ?? ''}`, 'use the wasm executor on this provider')
    if (opts.signal?.aborted === true) throw cancelledError(req.taskId, opts.signal)
    if (req.input.length > MAX_INPUT_BYTES) throw executorError(ExecutorErrorCode.INPUT_TOO_LARGE, `docker tasks take at most ${MAX_INPUT_BYTES} bytes of input, this one has ${req.input.length}`, 'put large inputs in the image or fetch them inside the container')
    const started = performance.now()
    const create = await this.call('POST', '/containers/create', {
      Image: req.entry,
      Env: [`DBC_TASK_ID=${req.taskId}`, `DBC_INPUT_B64=${Buffer.from(req.input).toString('base64')}`],
      NetworkDisabled: true,
      HostConfig: {
        Memory: req.memoryLimitMib * 1024 * 1024,
        NetworkMode: 'none',
        AutoRemove: false,
        // the GPUs the slot holds, through the NVIDIA container runtime
        DeviceRequests: (req.gpuIndexes ?? []).length === 0 ? [] : [{ Driver: 'nvidia', DeviceIDs: (req.gpuIndexes ?? []).map(String), Capabilities: [['gpu']] }]
      }
    }, opts.signal)
    if (create.status !== 201) throw executorError(ExecutorErrorCode.BAD_MODULE, `Docker could not create a container from image "${req.entry}": HTTP ${create.status} ${create.body.toString().slice(0, 300)}`, 'pull the image on the provider first, or use a smaller/public image')
    const id = (JSON.parse(create.body.toString()) as { Id: string }).Id
    const timer = setTimeout(() => { void this.call('POST', `/containers/${id}/kill`).catch(() => {}) }, req.timeoutMs)
    let timedOut = false
    timer.unref()
    try {
      await this.call('POST', `/containers/${id}/start`, undefined, opts.signal)
      const wait = await this.call('POST', `/containers/${id}/wait`, undefined, opts.signal, req.timeoutMs + 5000)
      timedOut = performance.now() - started >= req.timeoutMs
      const status = (JSON.parse(wait.body.toString()) as { StatusCode: number }).StatusCode
      const logs = await this.call('GET', `/containers/${id}/logs?stdout=1&stderr=0`, undefined, opts.signal)
      const output = demuxDockerStream(logs.body)
      if (timedOut) throw executorError(ExecutorErrorCode.TIMEOUT, `task ${req.taskId} ran past its wall-time limit of ${req.timeoutMs} ms and was stopped`)
      if (status !== 0) throw executorError(ExecutorErrorCode.EXIT_CODE, `task ${req.taskId}: the container exited with code ${status}`)
      if (output.length > req.maxOutputBytes) throw executorError(ExecutorErrorCode.OUTPUT_TOO_LARGE, `output of ${output.length} bytes is above the limit of ${req.maxOutputBytes} bytes`)
      return { output, wallMs: performance.now() - started, cpuMs: 0 }
    } finally {
      clearTimeout(timer)
      await this.call('DELETE', `/containers/${id}?force=1`).catch(() => {})
    }
  }

  async close (): Promise<void> {}
}

/** Docker's multiplexed log stream: 8-byte headers (stream id, 3 zero bytes, u32 BE length). */
export function demuxDockerStream (b: Buffer): Uint8Array {
  const parts: Buffer[] = []
  let i = 0
  while (i + 8 <= b.length) {
    const len = b.readUInt32BE(i + 4)
    if (b[i] === 1) parts.push(b.subarray(i + 8, i + 8 + len))
    i += 8 + len
  }
  return new Uint8Array(Buffer.concat(parts))
}
