// The daemon's logger: pino, written in every mode to <dataDir>/logs/node.N.log, rolled by size
// with pino-roll (a new numbered file past log.maxSizeMiB, log.files kept in all), and in the
// foreground to stdout as well (lines for people on a terminal, JSON into a pipe). logs/node.log
// is a symlink to the newest file, so `tail -F logs/node.log` and `dbc node logs --follow` keep
// reading across a roll (see log-files.ts).
import { existsSync, lstatSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { basename, join } from 'node:path'
import { pino, type Level, type Logger, type StreamEntry } from 'pino'
import roll from 'pino-roll'
import { LOG_BASE, LOG_LINK, logDir, prettyLogLine } from './log-files.js'
import { printable } from '../jobs/task-output.js'

export interface NodeLogInit {
  dataDir: string
  level: Level | 'silent'
  /** Roll to a new file past this size (MiB). Default 10. */
  maxSizeMiB?: number
  /** Files kept, the newest included. Default 5. */
  files?: number
  /** Also write to stdout (the foreground). Default true. */
  stdout?: boolean
  /**
   * stdout gets each record as one line for people (as `dbc node logs` prints it: time, level,
   * message, key=value, control characters stripped) instead of JSON. Default: when stdout is a
   * terminal; a pipe still gets JSON. The files are JSON always.
   */
  pretty?: boolean
  /** Where the pretty lines go (tests). Default process.stdout. */
  out?: { write: (s: string) => unknown }
}

export interface NodeLog {
  logger: Logger
  /** <dataDir>/logs */
  dir: string
  /** Closes the file (tests; a daemon's process exit does this). */
  close: () => Promise<void>
}

/** Default roll size and file count (the config's log.maxSizeMiB and log.files). */
export const LOG_MAX_SIZE_MIB = 10
export const LOG_FILES = 5

/** The node's logger, with its file open. */
export async function openNodeLog (init: NodeLogInit): Promise<NodeLog> {
  const dir = logDir(init.dataDir)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  adoptUnrolledLog(dir)
  const files = Math.max(1, Math.floor(init.files ?? LOG_FILES))
  const maxBytes = Math.max(1024, Math.round((init.maxSizeMiB ?? LOG_MAX_SIZE_MIB) * 1024 * 1024))
  // sync writes: a line is on disk before the next one is made, so a crash loses none and a roll
  // never reorders lines (logs are not a hot path: hot paths log at trace level only)
  const file = await roll({
    file: join(dir, LOG_BASE),
    extension: '.log',
    size: `${maxBytes}b`,
    limit: { count: files, removeOtherLogFiles: true },
    mkdir: true,
    sync: true
  })
  const link = (): void => { linkNewest(dir, file.file) }
  link()
  file.on('ready', link)
  let reported = false
  file.on('error', (err: Error) => {
    // a full disk or a removed directory must not stop the node; say so once on stderr
    if (reported) return
    reported = true
    process.stderr.write(`dbc: cannot write the node log in ${dir}: ${err.message}\n`)
  })
  // 'silent' is the logger's level; each stream still needs a real one
  const streamLevel: Level = init.level === 'silent' ? 'fatal' : init.level
  const streams: StreamEntry[] = [{ level: streamLevel, stream: file }]
  if (init.stdout ?? true) {
    const out = init.out ?? process.stdout
    // pino hands a stream one record at a time, each ending in a newline
    const pretty = { write: (chunk: string): void => { for (const line of chunk.split('\n')) if (line !== '') out.write(printable(prettyLogLine(line)) + '\n') } }
    streams.push({ level: streamLevel, stream: (init.pretty ?? process.stdout.isTTY === true) ? pretty : pino.destination({ dest: 1, sync: true }) })
  }
  const logger = pino({ level: init.level, base: { component: 'dbc' } }, pino.multistream(streams))
  return {
    logger,
    dir,
    close: async () => {
      file.off('ready', link)
      if (file.destroyed === true) return
      await new Promise<void>(resolve => { file.once('close', () => { resolve() }); file.end() })
    }
  }
}

/** Points logs/node.log at the file being written (atomically: a reader never sees it missing). */
function linkNewest (dir: string, target: string | undefined): void {
  if (target === undefined) return
  const tmp = join(dir, `.${LOG_LINK}.${process.pid}`)
  try {
    rmSync(tmp, { force: true })
    symlinkSync(basename(target), tmp)
    renameSync(tmp, join(dir, LOG_LINK))
  } catch {
    rmSync(tmp, { force: true })
  }
}

/** A data dir from before rolling logs has a plain logs/node.log: it becomes the oldest numbered file. */
function adoptUnrolledLog (dir: string): void {
  const old = join(dir, LOG_LINK)
  try {
    if (!lstatSync(old).isFile()) return
  } catch {
    return
  }
  const to = join(dir, `${LOG_BASE}.0.log`)
  if (!existsSync(to)) renameSync(old, to)
}
