// A task's captured stderr as the submitter keeps and shows it. It comes from a provider, so it is
// hostile: capped here whatever the provider claims, and stripped of control characters before a
// terminal sees it (no escape sequences that move the cursor, retitle the window or hide lines).
// Pure: the CLI imports it, so it must stay cheap to load.

/** Bytes of one copy's stderr the submitter stores (its tail): the providers' executors keep as much. */
export const TASK_LOG_KEEP_BYTES = 64 * 1024

/** A job's stored logs in all; past it, each further copy keeps only TASK_LOG_SMALL_BYTES. */
export const JOB_LOG_BUDGET_BYTES = 32 * 1024 * 1024
export const TASK_LOG_SMALL_BYTES = 4 * 1024

/** A copy's stderr bounded for storage: the last `keep` bytes, and how much the task wrote in all. */
export interface BoundedLog { stderr: Uint8Array, totalBytes: number }

/**
 * Bounds what a provider sent: at most `keep` bytes (the tail), and a total that is at least what
 * came (a provider may claim less) and a finite whole number (it may claim anything).
 */
export function boundTaskLog (stderr: Uint8Array | null | undefined, claimedBytes: number | null | undefined, keep = TASK_LOG_KEEP_BYTES): BoundedLog | undefined {
  const got = stderr ?? new Uint8Array(0)
  if (got.length === 0) return undefined
  const kept = got.length > keep ? got.slice(got.length - keep) : got.slice()
  const claimed = typeof claimedBytes === 'number' && Number.isFinite(claimedBytes) ? Math.min(Math.floor(claimedBytes), 2 ** 32) : 0
  return { stderr: kept, totalBytes: Math.max(got.length, claimed) }
}

// C0 controls but tab and newline, DEL, C1 controls, and the bidi overrides that reorder what is shown.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
// an escape sequence (CSI ... final byte, OSC ... BEL/ST, or ESC + one char) is removed whole
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u009b[0-?]*[ -/]*[@-~]|\u001b[@-_]?/g

/** Text safe to print on a terminal: escape sequences and control characters removed, CRLF kept as LF. */
export function printable (text: string): string {
  return text.replace(/\r\n/g, '\n').replace(ESCAPES, '').replace(UNSAFE, '')
}

/** Bytes as text (invalid UTF-8 replaced) safe to print. */
export function printableBytes (b: Uint8Array): string {
  return printable(new TextDecoder().decode(b))
}
