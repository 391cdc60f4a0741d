// The daemon's last line of defence: an error that escaped every protocol handler reaches
// process 'uncaughtException' / 'unhandledRejection'. Where it is safe (the error came from one
// protocol handler's call chain, or it is a broken connection or stream), it is logged with the
// protocol and peer behind it and the node keeps serving (the peer is charged when it is not a
// broken stream); otherwise (an unknown error outside any handler, or a flood of escapes
// outside any handler) the node stops cleanly and exits non-zero with one line. Escapes inside
// a handler never stop the node, however many: a remote peer must not hold a kill switch.
// The decision is the pure `decideOnEscape`; `installLastResort` only feeds it and acts.
import { currentProtocolContext, type ProtocolContext } from './protocol-context.js'
import { WireError } from '../errors.js'

/**
 * Escapes outside any protocol handler (broken streams no handler owned) allowed in a minute
 * before the node gives up: beyond that something is broken for good. Escapes inside a handler
 * are not counted: a peer could cause those at will.
 */
export const MAX_ESCAPES_PER_MINUTE = 60
const ESCAPE_WINDOW_MS = 60_000
/** Exit code when the last resort stops the node (EX_SOFTWARE). */
export const LAST_RESORT_EXIT_CODE = 70
/** How long a clean stop may take before the process exits anyway. */
const STOP_TIMEOUT_MS = 10_000
/** An identical log line is written at most once per this interval, with a count of the rest. */
const REPEAT_INTERVAL_MS = 1000
const MAX_REPEAT_KEYS = 256
/** Contained-escape lines written per interval at most, whatever their text (the rest are counted). */
export const MAX_CONTAINED_LINES = 20

// Errors of a connection or stream, not of the node: a peer hung up, reset or timed out.
const IO_CODES = new Set(['EPIPE', 'ECONNRESET', 'ECONNABORTED', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_WRITE_AFTER_END', 'ERR_STREAM_PUSH_AFTER_EOF', 'ERR_STREAM_ALREADY_FINISHED', 'ERR_STREAM_CANNOT_PIPE', 'ERR_SOCKET_CLOSED'])
// the same failures as libp2p names them (err.name; libp2p 3 error classes carry no code)
const IO_NAMES = new Set(['StreamResetError', 'StreamStateError', 'StreamAbortedError', 'StreamClosedError', 'StreamBufferError', 'ConnectionClosedError', 'ConnectionClosingError', 'MuxerClosedError', 'TooManyOutboundProtocolStreamsError', 'AbortError', 'TimeoutError'])

/** Whether an error is a broken connection or stream (EPIPE, ECONNRESET, ERR_STREAM_*, libp2p stream errors). */
export function isStreamIoError (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown, name?: unknown }
  if (typeof e.code === 'string' && (IO_CODES.has(e.code) || e.code.startsWith('ERR_STREAM_'))) return true
  return typeof e.name === 'string' && IO_NAMES.has(e.name)
}

export interface EscapeFacts {
  /** The protocol handler whose call chain threw, if any. */
  context: ProtocolContext | undefined
  /** isStreamIoError(the error). */
  ioError: boolean
  /** Escapes with no protocol context in the last minute, this one included (0 for one inside a handler). */
  recentEscapes: number
  maxEscapesPerMinute?: number
}

export type EscapeDecision = { action: 'continue' | 'exit', reason: string }

/** Pure: keep serving or stop, for one escaped error. */
export function decideOnEscape (f: EscapeFacts): EscapeDecision {
  // inside a handler: contained, however many (counting them would hand peers a kill switch)
  if (f.context !== undefined) return { action: 'continue', reason: `contained to ${f.context.protocol} from ${f.context.peer}` }
  const max = f.maxEscapesPerMinute ?? MAX_ESCAPES_PER_MINUTE
  if (f.recentEscapes > max) return { action: 'exit', reason: `more than ${max} errors escaped outside any protocol handler in a minute` }
  if (f.ioError) return { action: 'continue', reason: 'a connection or stream failed' }
  return { action: 'exit', reason: 'an unexpected error outside any protocol handler' }
}

/** Timestamps of recent escapes; `record` returns how many fall in the last minute. */
export class EscapeWindow {
  private readonly times: number[] = []
  constructor (private readonly windowMs = ESCAPE_WINDOW_MS) {}
  record (now: number): number {
    this.times.push(now)
    while (this.times.length > 0 && this.times[0] <= now - this.windowMs) this.times.shift()
    return this.times.length
  }
}

/** Lets an identical line through at most once per interval; reports how many were held back. */
export class RepeatLimiter {
  private readonly last = new Map<string, { at: number, held: number, meta?: Record<string, unknown> }>()
  constructor (private readonly intervalMs = REPEAT_INTERVAL_MS, private readonly maxKeys = MAX_REPEAT_KEYS) {}
  /** `log: true` with the count of identical lines held back since the last one written. */
  admit (key: string, now: number, meta?: Record<string, unknown>): { log: boolean, repeated: number } {
    const e = this.last.get(key)
    if (e !== undefined && now - e.at < this.intervalMs) { e.held++; return { log: false, repeated: 0 } }
    if (e === undefined && this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value as string)
    this.last.set(key, { at: now, held: 0, meta })
    return { log: true, repeated: e?.held ?? 0 }
  }

  /** Lines held back and not yet reported (key, count, the fields given with it), cleared. */
  drain (): Array<[string, number, Record<string, unknown> | undefined]> {
    const out: Array<[string, number, Record<string, unknown> | undefined]> = []
    for (const [k, e] of this.last) if (e.held > 0) { out.push([k, e.held, e.meta]); e.held = 0 }
    return out
  }
}

interface EscapeLog {
  error: (obj: Record<string, unknown>, msg: string) => void
  warn: (obj: Record<string, unknown>, msg: string) => void
}

export interface LastResortInit {
  log: EscapeLog
  /** Stops the daemon cleanly (closing the API, subsystems, libp2p, the store). */
  stop: () => Promise<void>
  /** Print the stack with the exit line (--verbose or DEBUG). */
  verbose?: boolean
  maxEscapesPerMinute?: number
  /**
   * Charges the peer whose handler an error escaped (not for a broken stream: an honest peer
   * hangs up too); the daemon's reportBadInput. Optional: without it the escape is only logged.
   */
  charge?: (peer: string, err: WireError) => void
  /** Default: process.exit. */
  exit?: (code: number) => void
  /** Where the one exit line goes; default stderr. */
  write?: (line: string) => void
  now?: () => number
}

export interface LastResort {
  /** 0 while serving; LAST_RESORT_EXIT_CODE once the last resort decided to stop the node. */
  readonly exitCode: number
  readonly contained: number
  /** Handles one escaped error as the process handlers do (tests call it directly). */
  handle: (kind: 'uncaughtException' | 'unhandledRejection', err: unknown) => EscapeDecision
  uninstall: () => void
}

function describe (err: unknown): { message: string, code?: string, name?: string, stack?: string } {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code
    return { message: err.message, code: typeof code === 'string' ? code : undefined, name: err.name, stack: err.stack }
  }
  return { message: typeof err === 'string' ? err : JSON.stringify(err) ?? String(err) }
}

/** Installs the process-wide handlers; returns what it decided so far and how to remove them. */
export function installLastResort (init: LastResortInit): LastResort {
  const now = init.now ?? Date.now
  const window = new EscapeWindow()
  const repeats = new RepeatLimiter()
  const write = init.write ?? ((line: string) => { process.stderr.write(line) })
  const exit = init.exit ?? ((code: number) => { process.exit(code) })
  let exitCode = 0
  let contained = 0
  // contained lines of any text, per interval: distinct messages must not flood the log either
  let linesAt = -Infinity
  let lines = 0
  let dropped = 0
  // held-back repeats are reported once their burst is over, so a count is never lost
  const flush = setInterval(() => {
    for (const [key, n, meta] of repeats.drain()) init.log.warn({ ...meta, repeated: n }, `repeated ${n} more time(s) in the last second: ${key}`)
    if (dropped > 0) init.log.warn({ repeated: dropped }, `${dropped} more error(s) escaped protocol handlers in the last second (not logged one by one)`)
    dropped = 0
  }, REPEAT_INTERVAL_MS)
  flush.unref()

  const handle = (kind: 'uncaughtException' | 'unhandledRejection', err: unknown): EscapeDecision => {
    const context = currentProtocolContext()
    const d = describe(err)
    const ioError = isStreamIoError(err)
    const decision = decideOnEscape({ context, ioError, recentEscapes: context === undefined ? window.record(now()) : 0, maxEscapesPerMinute: init.maxEscapesPerMinute })
    if (decision.action === 'continue') {
      contained++
      if (context !== undefined && !ioError && init.charge !== undefined) {
        try {
          init.charge(context.peer, new WireError('HANDLER_FAILED', `an error escaped the ${context.protocol} handler serving this peer: ${d.message.slice(0, 200)}`))
        } catch {}
      }
      const line = `${kind === 'uncaughtException' ? 'an error' : 'a rejected promise'} escaped ${context === undefined ? 'a connection' : 'a protocol handler'}; still serving`
      const key = `${line} [${context?.protocol ?? '-'}] ${d.code ?? d.name ?? ''}: ${d.message}`
      const t = now()
      const r = repeats.admit(key, t, context === undefined ? undefined : { protocol: context.protocol, peer: context.peer })
      if (r.log && t - linesAt >= REPEAT_INTERVAL_MS) { linesAt = t; lines = 0 }
      if (r.log && ++lines > MAX_CONTAINED_LINES) { dropped++; return decision }
      if (r.log) init.log.error({ protocol: context?.protocol, peer: context?.peer, code: d.code, err: d.message, reason: decision.reason, ...(r.repeated > 0 ? { repeated: r.repeated } : {}), ...(init.verbose === true ? { stack: d.stack } : {}) }, line)
      return decision
    }
    if (exitCode !== 0) return decision // already stopping: the first fatal error is the one reported
    exitCode = LAST_RESORT_EXIT_CODE
    const where = context === undefined ? '' : ` (protocol ${context.protocol}, peer ${context.peer})`
    init.log.error({ protocol: context?.protocol, peer: context?.peer, code: d.code, err: d.message, stack: d.stack, reason: decision.reason }, 'stopping the node: ' + decision.reason)
    write(`dbc node: stopping: ${decision.reason}: ${d.code !== undefined ? d.code + ' ' : ''}${d.message}${where}\n` +
      (init.verbose === true && d.stack !== undefined ? d.stack + '\n' : ''))
    const timer = setTimeout(() => { exit(exitCode) }, STOP_TIMEOUT_MS)
    timer.unref()
    void init.stop().catch(() => {}).finally(() => { clearTimeout(timer); exit(exitCode) })
    return decision
  }
  const onException = (err: unknown): void => { handle('uncaughtException', err) }
  const onRejection = (reason: unknown): void => { handle('unhandledRejection', reason) }
  process.on('uncaughtException', onException)
  process.on('unhandledRejection', onRejection)
  return {
    get exitCode () { return exitCode },
    get contained () { return contained },
    handle,
    uninstall: () => {
      clearInterval(flush)
      process.off('uncaughtException', onException)
      process.off('unhandledRejection', onRejection)
    }
  }
}
