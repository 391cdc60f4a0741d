// How the CLI talks to people: errors with a hint and no stack trace (unless --verbose or
// DEBUG), tables for humans, JSON for scripts.
import { DbcError, ConfigError } from '../errors.js'

export function verboseWanted (): boolean {
  return process.argv.includes('--verbose') || (process.env.DEBUG ?? '') !== ''
}

export function printError (err: unknown): number {
  const verbose = verboseWanted()
  if (err instanceof DbcError) {
    process.stderr.write(`error: ${err.message}\n`)
    if (err.hint !== undefined) process.stderr.write(`hint: ${err.hint}\n`)
    if (verbose && err.stack !== undefined) process.stderr.write(err.stack + '\n')
    return err instanceof ConfigError ? 2 : 1
  }
  const e = err as Error
  process.stderr.write(`error: ${e?.message ?? String(err)}\n`)
  if (verbose && e?.stack !== undefined) process.stderr.write(e.stack + '\n')
  else process.stderr.write('hint: run again with --verbose for details\n')
  return 1
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export function table (head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => (c ?? '').padEnd(w[i])).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n') + '\n'
}

export function formatDuration (ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
}
