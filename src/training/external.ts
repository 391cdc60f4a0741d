// The external-trainer protocol (docs/external-trainer.md): a trainer process outside the node
// (PyTorch on a GPU) holds the model; the node drives it with msgpack requests over the
// process's stdin/stdout or a Unix socket. Frame = 4-byte big-endian length + msgpack map.
// Requests carry `id` and `op`; replies echo `id` with `ok` and the op's fields, or `error`.
// Parameters travel as one flat float32 little-endian byte string; the job's data (this member's
// shard and the test set) travels once, in `load_data` right after `hello`.
import { spawn, type ChildProcess } from 'node:child_process'
import { logger } from '@libp2p/logger'
import { connect } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import { pack, unpack } from 'msgpackr'
import { TrainingError, bytesToFloats, floatsToBytes } from './worker.js'
import type { EvalResult, StepResult, Trainer, TrainingData } from './trainer.js'
import { datasetFrom, type Dataset } from './mnist.js'
import type { TrainingSpec } from './spec.js'

/** 2: `load_data` delivers the data, `hello` names the model, its reply the device. */
export const EXTERNAL_PROTOCOL_VERSION = 2
/** 256 MiB: 64M float32 parameters in one frame. */
export const EXTERNAL_MAX_FRAME = 256 * 1024 * 1024

export type ExternalOp = 'hello' | 'load_data' | 'get_params' | 'set_params' | 'push_update' | 'step' | 'evaluate' | 'shutdown'

/**
 * `load_data`'s fields: samples row-major as float32 LE (count × features), labels one byte each.
 * A trainer reads them with numpy.frombuffer(train_x, '<f4').reshape(-1, features).
 */
export function encodeTrainingData (data: TrainingData): Record<string, unknown> {
  const { train, test } = data
  return {
    features: train.features,
    classes: data.classes,
    train_x: floatBytes(train.inputs),
    train_y: train.labels,
    test_x: floatBytes(test.inputs),
    test_y: test.labels
  }
}

function floatBytes (v: Float32Array): Uint8Array { return new Uint8Array(v.buffer, v.byteOffset, v.byteLength) }

/** The dataset fields of a `load_data` request (the trainer's side). */
export function decodeTrainingData (m: Record<string, unknown>): { train: Dataset, test: Dataset, classes: number } {
  const features = Number(m.features)
  if (!Number.isInteger(features) || features <= 0) throw new TrainingError('EXTERNAL_BAD_DATA', 'load_data without a positive `features`')
  const part = (x: unknown, y: unknown): Dataset => {
    const inputs = bytesToFloats(asBytes(x))
    const labels = Uint8Array.from(asBytes(y))
    if (inputs.length !== labels.length * features) throw new TrainingError('EXTERNAL_BAD_DATA', `load_data: ${inputs.length} values for ${labels.length} labels of ${features} features`)
    const rows: Float32Array[] = []
    for (let i = 0; i < labels.length; i++) rows.push(inputs.subarray(i * features, (i + 1) * features))
    return datasetFrom(rows, Array.from(labels))
  }
  return { train: part(m.train_x, m.train_y), test: part(m.test_x, m.test_y), classes: Number(m.classes) }
}

/** Splits a byte stream into frames (4-byte big-endian length prefix), bounded. */
export class ExternalFrameReader {
  private buf: Buffer = Buffer.alloc(0)
  /** Chunks of a frame still incomplete, joined once it is whole (a 25 MB load_data comes in ~400 chunks). */
  private held: Buffer[] = []
  private heldBytes = 0
  private need = 0
  constructor (private readonly maxFrame = EXTERNAL_MAX_FRAME) {}

  push (chunk: Buffer): Array<Record<string, unknown>> {
    if (this.need > 0) {
      this.held.push(chunk)
      this.heldBytes += chunk.length
      if (this.heldBytes < this.need) return []
      this.buf = Buffer.concat(this.held, this.heldBytes)
      this.held = []
      this.heldBytes = 0
      this.need = 0
    } else {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    }
    const out: Array<Record<string, unknown>> = []
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0)
      if (n > this.maxFrame) throw new TrainingError('EXTERNAL_FRAME_TOO_LARGE', `external trainer frame of ${n} bytes exceeds ${this.maxFrame}`)
      if (this.buf.length < 4 + n) {
        this.held = [this.buf]
        this.heldBytes = this.buf.length
        this.need = 4 + n
        this.buf = Buffer.alloc(0)
        break
      }
      const body = this.buf.subarray(4, 4 + n)
      this.buf = this.buf.subarray(4 + n)
      const msg = unpack(body) as unknown
      if (msg === null || typeof msg !== 'object') throw new TrainingError('EXTERNAL_BAD_FRAME', 'external trainer frame is not a msgpack map')
      out.push(msg as Record<string, unknown>)
    }
    return out
  }
}

export function encodeExternalFrame (msg: Record<string, unknown>): Buffer {
  const body = pack(msg)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length, 0)
  return Buffer.concat([head, body])
}

function asBytes (v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v
  throw new TrainingError('EXTERNAL_BAD_REPLY', 'external trainer sent parameters that are not a byte string', { hint: 'send params as bytes: numpy_array.astype("<f4").tobytes()' })
}

const log = logger('dbc:training:external')

export interface ExternalTrainerOptions {
  /** Per-request time limit, ms (default 10 min: a step on a big model can be slow). */
  requestTimeoutMs?: number
  /** Time limit for the first request (`hello`: imports, CUDA start), ms (default min(requestTimeoutMs, 2 min)). */
  helloTimeoutMs?: number
  /** Largest `param_count` the trainer may announce; more is refused (default 16M: one 64 MiB state frame). */
  maxParams?: number
  /** Runs after the trainer is closed and its process is gone (e.g. removes its work dir). */
  onClose?: () => Promise<void>
}

/** A trainer process the node started: `kill` ends it and everything it started. */
export interface TrainerProcess {
  child: ChildProcess
  kill: () => Promise<void>
}

/** The most parameters any trainer may announce: a model's state travels in one 64 MiB frame. */
export const EXTERNAL_MAX_PARAMS = 16_000_000
/** PATH of a spawned trainer when the operator allows none. */
export const MINIMAL_PATH = '/usr/local/bin:/usr/bin:/bin'

/** Starts `command` in its own process group; `kill` signals the whole group. */
export function spawnProcessGroup (command: string[], opts: { env: Record<string, string>, cwd?: string }): TrainerProcess {
  const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd, detached: true })
  // a failed spawn (ENOENT, EACCES) is reported as 'error'; without a listener it kills the node
  child.on('error', () => {})
  const exited = new Promise<void>(resolve => {
    if (child.pid === undefined) { resolve(); return }
    child.once('exit', () => { resolve() })
    child.once('error', () => { if (child.pid === undefined) resolve() })
  })
  return {
    child,
    kill: async () => {
      if (child.pid === undefined) return
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
      await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 5000).unref())])
    }
  }
}

/** A Trainer backed by an external process. */
export class ExternalTrainer implements Trainer {
  paramCount = 0
  /** The device the trainer said it trains on (`hello`'s reply; 'cpu' when it said none). */
  device = 'cpu'
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (m: Record<string, unknown>) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  private readonly reader: ExternalFrameReader
  private closed: Error | undefined
  private closing: Promise<void> | undefined
  private readonly timeoutMs: number
  private readonly opts: ExternalTrainerOptions
  /** The last bytes the trainer wrote to stderr (quoted in errors). */
  private stderrTail = ''

  constructor (private readonly input: Readable, private readonly output: Writable, private readonly proc?: TrainerProcess, opts: ExternalTrainerOptions = {}) {
    this.opts = opts
    this.timeoutMs = opts.requestTimeoutMs ?? 600_000
    this.reader = new ExternalFrameReader(Math.min(EXTERNAL_MAX_FRAME, 4 * (opts.maxParams ?? EXTERNAL_MAX_PARAMS) + 4096))
    input.on('data', (chunk: Buffer) => {
      let msgs: Array<Record<string, unknown>>
      try {
        msgs = this.reader.push(chunk)
      } catch (err) {
        this.fail(err as Error)
        return
      }
      for (const m of msgs) {
        const p = this.pending.get(Number(m.id))
        if (p === undefined) continue
        this.pending.delete(Number(m.id))
        clearTimeout(p.timer)
        if (m.ok === true) p.resolve(m)
        else p.reject(new TrainingError('EXTERNAL_TRAINER_ERROR', `external trainer: ${String(m.error ?? 'request failed')}`))
      }
    })
    const onEnd = (): void => { this.fail(new TrainingError('EXTERNAL_TRAINER_GONE', 'the external trainer closed its connection', { hint: 'check the trainer process\'s stderr' })) }
    input.on('end', onEnd)
    // every stream and the child get an error listener: an unhandled 'error' (ENOENT, EPIPE)
    // would kill the node
    input.on('error', (err) => { this.fail(new TrainingError('EXTERNAL_TRAINER_GONE', `the external trainer's output failed: ${err.message}`, { cause: err })) })
    output.on('error', (err) => { this.fail(new TrainingError('EXTERNAL_TRAINER_GONE', `cannot write to the external trainer: ${err.message}`, { cause: err })) })
    const child = proc?.child
    child?.stderr?.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-2048)
      log('trainer stderr: %s', d.toString('utf8').trimEnd())
    })
    child?.stderr?.on('error', () => {})
    child?.on('error', (err) => { this.fail(new TrainingError('EXTERNAL_TRAINER_SPAWN_FAILED', `the external trainer could not start: ${err.message}`, { cause: err })) })
    child?.on('exit', (code, signal) => {
      const how = signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`
      this.fail(new TrainingError('EXTERNAL_TRAINER_EXITED', `the external trainer ${how}${this.stderrSummary()}`, { hint: 'check the trainer process\'s stderr' }))
    })
  }

  /** The last line the trainer wrote to stderr, for error messages. */
  private stderrSummary (): string {
    const line = this.stderrTail.trim().split('\n').pop()?.trim() ?? ''
    return line === '' ? '' : `: ${line.slice(0, 300)}`
  }

  /**
   * Starts `command` in its own process group and speaks the protocol on its stdin/stdout
   * (stderr is logged). The environment is `opts.env` only (default: a minimal PATH): the
   * node's own variables never leak into a trainer. Any failure to start rejects; nothing throws
   * asynchronously.
   */
  static async spawn (command: string[], hello: Record<string, unknown> = {}, opts: ExternalTrainerOptions & { env?: Record<string, string>, cwd?: string } = {}): Promise<ExternalTrainer> {
    return await ExternalTrainer.start(spawnProcessGroup(command, { env: opts.env ?? { PATH: MINIMAL_PATH }, cwd: opts.cwd }), hello, opts)
  }

  /** Speaks the protocol with a started process; kills it when hello fails. */
  static async start (proc: TrainerProcess, hello: Record<string, unknown>, opts: ExternalTrainerOptions = {}): Promise<ExternalTrainer> {
    const t = new ExternalTrainer(proc.child.stdout!, proc.child.stdin!, proc, opts)
    try {
      await t.hello(hello)
    } catch (err) {
      await t.close()
      throw err
    }
    return t
  }

  /** Connects to a trainer listening on a Unix socket (or Windows named pipe). */
  static async connect (path: string, hello: Record<string, unknown> = {}, opts: ExternalTrainerOptions = {}): Promise<ExternalTrainer> {
    const socket = connect(path)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', (err) => { reject(new TrainingError('EXTERNAL_TRAINER_UNREACHABLE', `cannot connect to the external trainer at ${path}: ${err.message}`, { hint: 'start the trainer first; it must listen on that socket', cause: err })) })
    })
    const t = new ExternalTrainer(socket, socket, undefined, opts)
    try {
      await t.hello(hello)
    } catch (err) {
      await t.close()
      throw err
    }
    return t
  }

  async request (op: ExternalOp, args: Record<string, unknown> = {}, timeoutMs = this.timeoutMs): Promise<Record<string, unknown>> {
    if (this.closed !== undefined) throw this.closed
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new TrainingError('EXTERNAL_TRAINER_TIMEOUT', `external trainer did not answer "${op}" within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
      this.output.write(encodeExternalFrame({ ...args, id, op }))
    })
  }

  private async hello (args: Record<string, unknown>): Promise<void> {
    const r = await this.request('hello', { version: EXTERNAL_PROTOCOL_VERSION, ...args }, this.opts.helloTimeoutMs ?? Math.min(this.timeoutMs, 120_000))
    const n = Number(r.param_count)
    if (!Number.isInteger(n) || n <= 0) throw new TrainingError('EXTERNAL_BAD_REPLY', 'external trainer\'s hello did not give param_count')
    const max = this.opts.maxParams ?? EXTERNAL_MAX_PARAMS
    if (n > max) throw new TrainingError('TRAINER_MODEL_TOO_LARGE', `the trainer's model has ${n} parameters, this node allows at most ${max}`, { hint: 'a smaller model, or raise the trainer\'s limits.maxParams in the provider\'s config' })
    this.paramCount = n
    if (typeof r.device === 'string' && r.device !== '') this.device = r.device.slice(0, 64)
  }

  /** Whether the trainer trains on a GPU (its `device` is cuda…): what bills GPU-seconds. */
  get usesGpu (): boolean { return this.device.startsWith('cuda') }

  /** Sends the member's shard and the test set (protocol 2: once, right after hello). */
  async loadData (data: TrainingData): Promise<void> { await this.request('load_data', encodeTrainingData(data)) }

  async getParams (): Promise<Float32Array> {
    const params = bytesToFloats(asBytes((await this.request('get_params')).params))
    if (params.length !== this.paramCount) throw new TrainingError('EXTERNAL_BAD_REPLY', `external trainer sent ${params.length} parameters, it announced ${this.paramCount}`)
    return params
  }

  async setParams (params: Float32Array): Promise<void> { await this.request('set_params', { params: floatsToBytes(params) }) }
  async pushUpdate (delta: Float32Array): Promise<void> { await this.request('push_update', { delta: floatsToBytes(delta) }) }

  async step (steps: number): Promise<StepResult> {
    const r = await this.request('step', { steps })
    return { loss: Number(r.loss), samples: Number(r.samples) }
  }

  async evaluate (): Promise<EvalResult> {
    const r = await this.request('evaluate')
    return { loss: Number(r.loss), accuracy: Number(r.accuracy) }
  }

  /** Asks the trainer to shut down, then kills its process group and runs onClose. Idempotent. */
  async close (): Promise<void> {
    this.closing ??= this.closeOnce()
    await this.closing
  }

  private async closeOnce (): Promise<void> {
    if (this.closed === undefined) {
      try { await this.request('shutdown', {}, Math.min(this.timeoutMs, 2000)) } catch {}
    }
    this.fail(new TrainingError('EXTERNAL_TRAINER_CLOSED', 'the external trainer was closed'))
    try { this.output.end() } catch {}
    if (this.proc !== undefined) {
      const child = this.proc.child
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        // a moment to exit on its own after `shutdown`, then the whole group goes
        await new Promise<void>(resolve => {
          const t = setTimeout(resolve, 1000)
          child.once('exit', () => { clearTimeout(t); resolve() })
        })
      }
      await this.proc.kill().catch(() => {})
    } else if ('destroy' in this.output && typeof this.output.destroy === 'function') {
      this.output.destroy()
    }
    await this.opts.onClose?.().catch((err: Error) => { log.error('trainer cleanup failed: %s', err.message) })
  }

  private fail (err: Error): void {
    if (this.closed === undefined) this.closed = err
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err) }
    this.pending.clear()
  }
}

/** What a trainer process implements; serveExternalTrainer() speaks the protocol around it. */
export interface ExternalTrainerHandler {
  hello: (args: Record<string, unknown>) => Promise<{ paramCount: number, device?: string }> | { paramCount: number, device?: string }
  /** The job's data (`load_data`); a trainer without it keeps its own. */
  loadData?: (data: { train: Dataset, test: Dataset, classes: number }) => Promise<void> | void
  getParams: () => Promise<Float32Array> | Float32Array
  setParams: (p: Float32Array) => Promise<void> | void
  step: (steps: number) => Promise<StepResult> | StepResult
  evaluate: () => Promise<EvalResult> | EvalResult
}

/**
 * The trainer-process side in Node (the Python example in the docs is the same loop). Serves
 * until `shutdown` or end of input; resolves then.
 */
export async function serveExternalTrainer (handler: ExternalTrainerHandler, input: Readable = process.stdin, output: Writable = process.stdout): Promise<void> {
  const reader = new ExternalFrameReader()
  let chain = Promise.resolve()
  await new Promise<void>((resolve) => {
    input.on('end', () => { void chain.then(resolve) })
    input.on('data', (chunk: Buffer) => {
      for (const m of reader.push(chunk)) {
        chain = chain.then(async () => {
          const reply = (fields: Record<string, unknown>): void => { output.write(encodeExternalFrame({ id: m.id, ok: true, ...fields })) }
          try {
            switch (m.op) {
              case 'hello': { const h = await handler.hello(m); reply({ param_count: h.paramCount, device: h.device ?? 'cpu' }); break }
              case 'load_data': await handler.loadData?.(decodeTrainingData(m)); reply({}); break
              case 'get_params': reply({ params: floatsToBytes(await handler.getParams()) }); break
              case 'set_params': await handler.setParams(bytesToFloats(asBytes(m.params))); reply({}); break
              case 'push_update': {
                const p = await handler.getParams()
                const d = bytesToFloats(asBytes(m.delta))
                for (let i = 0; i < p.length; i++) p[i] += d[i]
                await handler.setParams(p)
                reply({})
                break
              }
              case 'step': { const r = await handler.step(Number(m.steps)); reply({ loss: r.loss, samples: r.samples }); break }
              case 'evaluate': { const r = await handler.evaluate(); reply({ loss: r.loss, accuracy: r.accuracy }); break }
              case 'shutdown': reply({}); input.pause(); resolve(); break
              default: output.write(encodeExternalFrame({ id: m.id, ok: false, error: `unknown op ${String(m.op)}` }))
            }
          } catch (err) {
            output.write(encodeExternalFrame({ id: m.id, ok: false, error: (err as Error).message }))
          }
        })
      }
    })
  })
}
