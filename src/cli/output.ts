// How the CLI talks to people: errors with a hint and no stack trace (unless --verbose or
// DEBUG), tables for humans, JSON for scripts.
import { DbcError, ConfigError } from '../errors.js'
import { formatCoins } from '../core/settlement/stake.js'
import { printable } from '../jobs/task-output.js'

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

/** JSON with C1 controls and bidi marks escaped (JSON leaves them raw): text from peers can not drive the terminal. */
export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n')
}

export function table (head: string[], cells: string[][]): string {
  // cells may carry text from peers (refusal reasons, errors): no escape sequences reach the terminal
  const rows = cells.map(r => r.map(c => printable(c ?? '')))
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

/**
 * An amount of DBC as people read it: `0.0000005 DBC`, `12.5 DBC`. Numbers (float DBC, as the job
 * summary's metered and predicted costs) are rounded to 10 significant digits and never written
 * with an exponent; decimal strings (exact amounts, e.g. what was signed) are kept as they are;
 * bigints are wei (18 decimals). The one formatter for every amount the CLI prints.
 */
export function formatDbc (amount: number | string | bigint | null | undefined, opts: { unit?: boolean } = {}): string {
  const unit = opts.unit ?? true
  let text: string
  if (amount === null || amount === undefined || amount === '') return '-'
  if (typeof amount === 'bigint') text = formatCoins(amount)
  else if (typeof amount === 'string') {
    if (!/^-?\d+(\.\d+)?$/.test(amount)) return amount // not an amount: show what came
    text = amount.includes('.') ? amount.replace(/0+$/, '').replace(/\.$/, '') : amount
  } else if (!Number.isFinite(amount)) return String(amount)
  else text = plainDecimal(amount, 10)
  return unit ? `${text} DBC` : text
}

/** `x` rounded to `significant` digits, in positional notation, trailing zeros dropped. */
export function plainDecimal (x: number, significant: number): string {
  if (x === 0 || Math.abs(x) < 5e-19) return '0' // below one wei
  const [mantissa, exp] = Math.abs(x).toExponential(significant - 1).split('e')
  const digits = mantissa.replace('.', '')
  const e = Number(exp)
  let out: string
  if (e < 0) out = '0.' + '0'.repeat(-e - 1) + digits
  else if (e + 1 >= digits.length) out = digits + '0'.repeat(e + 1 - digits.length)
  else out = digits.slice(0, e + 1) + '.' + digits.slice(e + 1)
  if (out.includes('.')) out = out.replace(/0+$/, '').replace(/\.$/, '')
  if (out.includes('.') && out.split('.')[1].length > 18) out = out.slice(0, out.indexOf('.') + 19).replace(/0+$/, '').replace(/\.$/, '')
  return (x < 0 ? '-' : '') + out
}

/**
 * A reader that stops reading (`dbc job results J | head -5`) closes our stdout: the next write
 * fails with EPIPE. That is the reader's choice, not an error: end at once, quietly, with 0.
 */
export function endQuietlyOnClosedPipe (): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0)
      throw err
    })
  }
}
