// How `dbc job logs` prints one event: a line with the time, the task and copy, the provider and
// what happened; under a returned copy, what the task wrote to stderr, each line marked with its task.
// Everything that came from a provider (its error text, the task's output) goes through printable().
import { printable } from '../jobs/task-output.js'
import type { JobEventView } from './logs.js'

const PLACED: Record<string, string> = {
  initial: 'placed', redundant: 'placed (redundant copy)', retry: 'retried', speculative: 'speculated (straggler)', 'tie-break': 'placed (tie-break)', 'spot-check': 'placed (spot check)'
}

/** A shortened peer id, the start and end kept (enough to tell providers apart). */
export function shortPeer (id: string | undefined): string {
  if (id === undefined) return '?'
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
}

function clock (at: number): string {
  return new Date(at).toISOString().slice(11, 23)
}

export function formatJobEvent (e: JobEventView): string {
  const task = e.index === undefined ? '' : `task ${e.index}${e.attempt === undefined ? '' : ` copy ${e.attempt}`}`
  const on = e.provider === undefined ? '' : ` on ${shortPeer(e.provider)}`
  let line: string
  switch (e.kind) {
    case 'submitted': line = 'job submitted'; break
    case 'placed': line = `${task} ${PLACED[e.reason ?? ''] ?? `placed (${e.reason ?? '?'})`}${on}`; break
    case 'returned': {
      const took = e.ms === undefined ? '' : ` after ${(e.ms / 1000).toFixed(2)} s`
      const why = e.error === undefined || e.error === '' ? '' : `: ${oneLine(e.error)}`
      line = `${task} ${e.outcome ?? 'returned'}${on}${took}${why}`
      break
    }
    case 'task-failed': line = `task ${e.index ?? '?'} failed: ${oneLine(e.error ?? '')}`; break
    case 'ended': line = `job ${e.status ?? 'ended'}: ${e.done ?? 0} task(s) done, ${e.failed ?? 0} failed`; break
    default: line = `${e.kind}${task === '' ? '' : ' ' + task}`
  }
  let out = `${clock(e.at)}  ${line}\n`
  if (e.log !== undefined) out += formatTaskLog(e, e.log)
  return out
}

/** A copy's stderr, labelled: a header naming task, copy and provider, then each line marked with its task. */
function formatTaskLog (e: JobEventView, log: NonNullable<JobEventView['log']>): string {
  const label = `task ${e.index ?? '?'}${e.attempt === undefined ? '' : ` copy ${e.attempt}`} on ${shortPeer(e.provider)}`
  const cut = log.truncated ? `, the last ${log.kept} of ${log.bytes} bytes (the start was cut)` : `, ${log.bytes} bytes`
  const lines = printable(log.text).replace(/\n$/, '').split('\n')
  const tag = `task ${e.index ?? '?'}${e.attempt === undefined ? '' : `.${e.attempt}`}`
  return `  --- stderr of ${label}${cut}\n` + lines.map(l => `  ${tag} | ${l}\n`).join('')
}

function oneLine (s: string): string {
  return printable(s).replace(/\s*\n\s*/g, ' ⏎ ')
}
