// One error class per condition, told apart by `name` (and `code`), never by message text.
// Every error says what happened and, in `hint`, what to do about it.

export interface DbcErrorOptions {
  hint?: string
  cause?: unknown
  /** Facts a program can read (not `details`: uvu's failure printer calls .split on that name). */
  data?: Record<string, unknown>
}

export class DbcError extends Error {
  override name = 'DbcError'
  readonly code: string
  readonly hint?: string
  readonly data?: Record<string, unknown>

  constructor (code: string, message: string, opts: DbcErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.hint = opts.hint
    this.data = opts.data
  }
}

/** Bad configuration (file, environment or flag). The CLI exits with code 2. */
export class ConfigError extends DbcError {
  override name = 'ConfigError'
  readonly key: string
  constructor (key: string, problem: string, opts: DbcErrorOptions = {}) {
    super('CONFIG_INVALID', `config "${key}": ${problem}`, opts)
    this.key = key
  }
}

/** Bytes from a peer that do not decode, or break a size or count limit. */
export class WireError extends DbcError {
  override name = 'WireError'
}

/** The daemon is not running, or its control API refused us. */
export class DaemonUnavailableError extends DbcError {
  override name = 'DaemonUnavailableError'
}

/** A job manifest failed validation. */
export class ManifestError extends DbcError {
  override name = 'ManifestError'
}

/** Something about the chain bridge: RPC unreachable, wrong chain id, unfunded key... */
export class ChainError extends DbcError {
  override name = 'ChainError'
}

/** A task failed in an executor (timeout, memory cap, bad module, ...). */
export class ExecutorError extends DbcError {
  override name = 'ExecutorError'
}

export function isDbcError (err: unknown): err is DbcError {
  return err instanceof DbcError
}

/**
 * Text for anything thrown. libp2p sometimes rejects with an Event (a StreamCloseEvent when the peer
 * closes a stream before it answers), which has no message: `dbc ping` printed "cannot reach P: undefined".
 */
export function errorText (err: unknown): string {
  if (err instanceof Error) return err.message !== '' ? err.message : err.name
  if (typeof err === 'object' && err !== null) {
    const e = err as { type?: unknown, error?: unknown, local?: unknown }
    if (e.error instanceof Error) return errorText(e.error)
    if (typeof e.type === 'string') return `the stream was ${e.type === 'close' ? 'closed' : `ended (${e.type})`} by ${e.local === true ? 'this node' : 'the peer'} before it answered`
  }
  return String(err)
}
