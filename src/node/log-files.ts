// Reading the node's rolled log files (written by logging.ts): the last lines across files, and
// a follower that survives a roll (it finishes the file it reads, then moves to the next one).
// File system only, no logger: `dbc node logs` loads this and nothing heavy.
import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs'
import { join } from 'node:path'

export const LOG_BASE = 'node'
/** logs/node.log: a symlink to the newest file. */
export const LOG_LINK = 'node.log'

export function logDir (dataDir: string): string { return join(dataDir, 'logs') }

const NUMBERED = /^node\.(\d+)\.log$/

/** The numbered log files, oldest first. */
export function listLogFiles (dir: string): Array<{ file: string, number: number }> {
  let names: string[]
  try { names = readdirSync(dir) } catch { return [] }
  const out: Array<{ file: string, number: number }> = []
  for (const n of names) {
    const m = NUMBERED.exec(n)
    if (m !== null) out.push({ file: join(dir, n), number: Number(m[1]) })
  }
  return out.sort((a, b) => a.number - b.number)
}

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
function readAt (fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length)
  let got = 0
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, offset + got)
    if (n === 0) break
    got += n
  }
  return buf.subarray(0, got)
}

/** The last `n` complete lines of one file, read from its end in blocks. */
function lastLinesOf (file: string, n: number): string[] {
  let fd: number
  try { fd = openSync(file, 'r') } catch { return [] }
  try {
    const size = fstatSync(fd).size
    let start = size
    let text = ''
    while (start > 0) {
      const len = Math.min(64 * 1024, start)
      start -= len
      text = readAt(fd, start, len).toString('utf8') + text
      if (text.split('\n').length > n + 1) break
    }
    const lines = text.split('\n')
    if (lines[lines.length - 1] === '') lines.pop()
    return lines.slice(-n)
  } finally {
    closeSync(fd)
  }
}

/** The last `n` lines of the node's log, from as many files as it takes, oldest first. */
export function lastLogLines (dir: string, n: number): string[] {
  const files = listLogFiles(dir)
  let out: string[] = []
  for (let i = files.length - 1; i >= 0 && out.length < n; i--) {
    out = [...lastLinesOf(files[i].file, n - out.length), ...out]
  }
  return out
}

export interface FollowOptions {
  signal: AbortSignal
  /** How often the files are looked at (ms). Default 250. */
  pollMs?: number
  /** Start at the end of the newest file (default), or at the start of the oldest. */
  from?: 'end' | 'start'
}

/**
 * Calls `onLine` with each line written to the node's log from now on, across rolls: the
 * follower reads the file it has to its end before it moves to the next number, and a file
 * removed under it is left for the next one. Resolves when `signal` aborts.
 */
export async function followLog (dir: string, onLine: (line: string) => void, opts: FollowOptions): Promise<void> {
  const pollMs = opts.pollMs ?? 250
  let current: { number: number, offset: number } | undefined
  let partial = ''
  // a log that appears only after the follower started (the node was not running) is read whole
  const start = (from: 'start' | 'end'): void => {
    const files = listLogFiles(dir)
    if (files.length === 0) return
    const f = from === 'start' ? files[0] : files[files.length - 1]
    current = { number: f.number, offset: from === 'start' ? 0 : sizeOf(f.file) }
  }
  const drain = (file: string): void => {
    if (current === undefined) return
    let fd: number
    try { fd = openSync(file, 'r') } catch { return }
    try {
      const size = fstatSync(fd).size
      if (size < current.offset) current.offset = 0 // truncated under us: read it again
      while (current.offset < size) {
        const chunk = readAt(fd, current.offset, Math.min(1024 * 1024, size - current.offset))
        if (chunk.length === 0) break
        current.offset += chunk.length
        partial += chunk.toString('utf8')
        let i: number
        while ((i = partial.indexOf('\n')) >= 0) {
          onLine(partial.slice(0, i))
          partial = partial.slice(i + 1)
        }
      }
    } finally {
      closeSync(fd)
    }
  }
  start(opts.from ?? 'end')
  while (!opts.signal.aborted) {
    if (current === undefined) start('start')
    if (current !== undefined) {
      const files = listLogFiles(dir)
      const mine = files.find(f => f.number === current?.number)
      if (mine !== undefined) drain(mine.file)
      // a newer file exists: this one is finished (read to its end above); move on
      const next = files.find(f => f.number > (current?.number ?? Infinity))
      if (next !== undefined) {
        if (partial !== '') { onLine(partial); partial = '' }
        current = { number: next.number, offset: 0 }
        continue
      }
    }
    await new Promise<void>(resolve => {
      const t = setTimeout(resolve, pollMs)
      opts.signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
    })
  }
}

function sizeOf (file: string): number {
  try {
    const fd = openSync(file, 'r')
    try { return fstatSync(fd).size } finally { closeSync(fd) }
  } catch {
    return 0
  }
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'component', 'v'])

/**
 * One pino record as one line for people: time, level, message, then key=value. A line that is
 * not a record is given back as it is. The caller strips control characters (printable()).
 */
export function prettyLogLine (line: string): string {
  let r: Record<string, unknown>
  try {
    const parsed = JSON.parse(line) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return line
    r = parsed as Record<string, unknown>
  } catch {
    return line
  }
  const time = typeof r.time === 'number' ? new Date(r.time).toISOString().replace('T', ' ').replace('Z', '') : ''
  const level = typeof r.level === 'number' ? LEVELS[r.level] ?? String(r.level) : String(r.level ?? '')
  const comp = typeof r.component === 'string' && r.component !== 'dbc' ? ` [${r.component}]` : ''
  const fields = Object.entries(r).filter(([k]) => !HIDDEN.has(k)).map(([k, v]) => `${k}=${fieldText(v)}`)
  return `${time} ${level.padEnd(5)}${comp} ${typeof r.msg === 'string' ? r.msg : ''}${fields.length > 0 ? '  ' + fields.join(' ') : ''}`.trimEnd()
}

function fieldText (v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v
  if (typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string') {
    const e = v as { type?: unknown, message: string }
    return JSON.stringify(`${typeof e.type === 'string' ? e.type + ': ' : ''}${e.message}`)
  }
  return JSON.stringify(v) ?? String(v)
}
