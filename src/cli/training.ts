// Training jobs from the CLI: a manifest with `type: training` (read by `dbc job submit`), the
// progress lines while it runs and the status lines of `dbc job status`. Member peer ids and error
// texts can carry peer input: printed through printable().
import { resolve } from 'node:path'
import type { ApiClient } from '../api/client.js'
import { ManifestError } from '../errors.js'
import { printJson } from './output.js'
import { printable } from '../jobs/task-output.js'

export const fmtNum = (v: unknown): string => typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : '-'
export const fmtPct = (v: unknown): string => typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(2)}%` : '-'
const peerShort = (p: unknown): string => `${printable(String(p)).slice(0, 16)}…`
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
/** Dropped members per line at most (a group has at most 64). */
const DROPPED_SHOWN = 4

/**
 * A manifest whose `type` is `training` (the rest, or its `training:` section, is the spec);
 * undefined for a grid manifest (no `type`). Any other `type` is a mistake named
 * by its field: it used to be read as a grid manifest, whose errors (executor, code, inputs
 * missing) said nothing about the misspelt type.
 */
export async function readTrainingManifest (file: string): Promise<{ spec: unknown, peers?: string[], name?: string } | undefined> {
  const { readFile } = await import('node:fs/promises')
  const { parse } = await import('yaml')
  let raw: any
  try { raw = parse(await readFile(resolve(file), 'utf8')) } catch { return undefined } // loadManifestFile reports it
  if (raw === null || typeof raw !== 'object') return undefined
  if (raw.type !== undefined && raw.type !== 'training') {
    throw new ManifestError('MANIFEST_INVALID', `${file}: type: ${JSON.stringify(printable(String(raw.type)).slice(0, 40))} is not a job type (the only one is training; a grid job's manifest has no type)`, { hint: 'write `type: training` for a training job (examples/train-mnist.yaml), or leave type out for a grid job (examples/squares.yaml)' })
  }
  if (raw.type !== 'training') return undefined
  const { type: _t, name: rawName, peers, training, ...rest } = raw
  // with a training: section, the spec's fields go there: one beside it would be dropped unread
  const beside = training != null && typeof training === 'object' ? Object.keys(rest).filter(k => k !== 'routing') : []
  if (beside.length > 0) throw new ManifestError('MANIFEST_INVALID', `${file}: ${printable(beside[0]).slice(0, 64)}: a training manifest with a training: section takes the spec's fields there${beside.length > 1 ? ` (and ${beside.length - 1} more beside it)` : ''}`, { hint: 'move it under training:, or write the spec fields at the top level with no training: section (examples/train-mnist.yaml)' })
  // the job is listed by its manifest's name (`dbc job list`, the dashboard)
  const name = typeof rawName === 'string' || typeof rawName === 'number' ? String(rawName) : undefined
  // a top-level `routing:` (as in a grid manifest) is the job's routing unless its training section names one
  const spec = training ?? rest
  if (training != null && typeof training === 'object' && rest.routing !== undefined && training.routing === undefined) return { spec: { ...training, routing: rest.routing }, peers, ...(name !== undefined ? { name } : {}) }
  return { spec, peers, ...(name !== undefined ? { name } : {}) }
}

/**
 * One progress line of a running training job (an event of /v1/training/:id/events; `round` from
 * 0, printed from 1). `dropped` is the list of members that left in that round: it was compared
 * with 0 as a number, so a member stopped mid-job showed only as "2 peers" turning into "1 peers".
 */
export function trainingProgressLine (ev: Record<string, any>): string {
  const dropped = Array.isArray(ev.dropped) ? ev.dropped : []
  const left = dropped.length === 0
    ? ''
    : `, dropped ${dropped.slice(0, DROPPED_SHOWN).map(peerShort).join(', ')}${dropped.length > DROPPED_SHOWN ? ` and ${dropped.length - DROPPED_SHOWN} more` : ''} (late or silent: the round averaged without some of its part)`
  return `round ${Number(ev.round) + 1}: loss ${fmtNum(ev.loss)}, accuracy ${fmtPct(ev.accuracy)}, ${plural(Number(ev.members), 'peer')}, ${Number(ev.roundMs ?? 0).toFixed(0)} ms${left}`
}

/** `dbc job status` of a training job (GET /v1/training/:id): its state, members, who dropped out, refusals, routes. */
export function trainingStatusLines (t: Record<string, any>): string[] {
  const members = Array.isArray(t.members) ? t.members : []
  // the group as asked (groupSize) beside the members it has: fewer peers served training than the spec asked
  const asked = Number.isInteger(t.groupSize) && t.groupSize > members.length && members.length > 0 && t.status === 'running' ? ` of ${String(t.groupSize)} asked (looking for more)` : ''
  const named = typeof t.name === 'string' && t.name !== 'training' ? ` (${printable(t.name)})` : ''
  const lines = [`training job ${printable(String(t.jobId))}${named}: ${printable(String(t.status))}, round ${Number(t.round) + 1}/${String(t.rounds)}, loss ${fmtNum(t.loss)}, accuracy ${fmtPct(t.accuracy)}, ${plural(members.length, 'member')}${asked}`]
  // members that left the group, and in which round (the history holds every round's dropped list)
  const drops: Array<{ round: number, peer: unknown }> = []
  for (const h of Array.isArray(t.history) ? t.history : []) {
    for (const peer of Array.isArray(h?.dropped) ? h.dropped : []) drops.push({ round: Number(h.round), peer })
  }
  for (const d of drops.slice(-8)) lines.push(`dropped ${peerShort(d.peer)} in round ${d.round + 1}${members.includes(d.peer) ? ' (back in the group since)' : ''}`)
  // one member keeping no optimizer state (its own claim) switches the momentum averaging off for the group (review s13 L8)
  const offBy = Array.isArray(t.momentumOffBy) ? t.momentumOffBy : []
  if (offBy.length > 0) lines.push(`momentum averaging off: ${offBy.slice(0, 8).map(peerShort).join(', ')}${offBy.length > 8 ? ` and ${offBy.length - 8} more` : ''} keep${offBy.length === 1 ? 's' : ''} no optimizer state (${offBy.length === 1 ? 'its' : 'their'} invitation reply said so); each member's momentum stays its own`)
  if (t.error != null) lines.push(`error: ${printable(String(t.error.message))}`)
  // members' refusals (of the invitation, or of a round: PAYER_BEHIND), while the job runs too
  else for (const r of (Array.isArray(t.refusals) ? t.refusals : []).slice(-8)) lines.push(`refused by ${peerShort(r.peer)}: ${printable(String(r.reason))}`)
  // each member's route from this node, under the job's routing (auto, direct or overlay)
  if (t.routing != null) lines.push(`routing: ${printable(String(t.routing))}`)
  for (const [peer, r] of Object.entries((t.routes ?? {}) as Record<string, any>).slice(0, 16)) lines.push(`  ${peerShort(peer)}: ${printable(String(r?.kind))}${Array.isArray(r?.relays) && r.relays.length > 0 ? ` via ${r.relays.slice(0, 4).map(peerShort).join(', ')}` : ''}`)
  return lines
}

/** `dbc job submit` of a training manifest; `--yes` lets its escrow be topped up as it runs (allowTopUp, as for a grid job: it was never sent). */
export async function submitTraining (client: ApiClient, m: { spec: unknown, peers?: string[], name?: string }, opts: { detach?: boolean, json?: boolean, yes?: boolean }): Promise<void> {
  const { jobId } = await client.call<{ jobId: string }>('POST', '/v1/training', { ...m, allowTopUp: opts.yes === true }, { timeoutMs: 120_000 })
  if (opts.detach === true) {
    if (opts.json === true) return printJson({ jobId })
    process.stdout.write(`${jobId}\nlook at it with: dbc job status ${jobId} (a snapshot of its rounds so far: run it again to see them advance; dbc job cancel ${jobId} stops it)\n`)
    return
  }
  if (opts.json !== true) process.stderr.write(`training job ${jobId} submitted\n`)
  let end: Record<string, any> = {}
  for await (const ev of client.stream<Record<string, any>>('GET', `/v1/training/${jobId}/events`)) {
    if (ev.type === 'end') { end = ev; break }
    if (opts.json !== true) process.stderr.write(trainingProgressLine(ev) + '\n')
  }
  if (opts.json === true) return printJson(end)
  if (end.status !== 'done') {
    process.stdout.write(`training job ${jobId} ${printable(String(end.status))}${end.error != null ? `: ${printable(String(end.error.message))}` : ''}\n`)
    process.exitCode = 1
    return
  }
  process.stdout.write(`training job ${jobId} ${String(end.status)}: test accuracy ${fmtPct(end.accuracy)}; fetch the model with: dbc job results ${jobId}\n`)
}

/**
 * `dbc job explain` of a training job (its --json too), from GET /v1/training/:id: the group as
 * this node coordinates it: each member's rank (data shard) and route, who dropped in which round
 * and whether it is back, the refusals with their codes. It printed only the routes (helper user16 #8).
 */
export function trainingExplain (t: Record<string, any>): Record<string, any> {
  const members: string[] = Array.isArray(t.members) ? t.members.map(String) : []
  const ranks = (t.ranks ?? {}) as Record<string, number>
  const routes = (t.routes ?? {}) as Record<string, any>
  const group = members.map(peer => ({ peer, rank: typeof ranks[peer] === 'number' ? ranks[peer] : null, route: routes[peer] ?? null }))
    .sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity))
  // round as the API counts it (from 0); printed from 1, as `dbc job status` does
  const drops: Array<{ round: number, peer: string, back: boolean }> = []
  for (const h of Array.isArray(t.history) ? t.history : []) {
    for (const peer of Array.isArray(h?.dropped) ? h.dropped : []) drops.push({ round: Number(h.round), peer: String(peer), back: members.includes(String(peer)) })
  }
  const refusals = (Array.isArray(t.refusals) ? t.refusals : []).map((r: any) => ({ peer: String(r?.peer), code: r?.code == null ? null : String(r.code), reason: String(r?.reason ?? '') }))
  return { jobId: t.jobId, name: t.name, status: t.status, training: true, round: t.round, rounds: t.rounds, routing: t.routing, members: group, drops, refusals, error: t.error ?? null, routes }
}

/** trainingExplain's answer as lines for people; `describeRoute` from src/net/routes/explain.ts (loaded by the caller). */
export function trainingExplainLines (e: Record<string, any>, describeRoute: (r: any) => string): string[] {
  const named = typeof e.name === 'string' && e.name !== 'training' ? ` (${printable(e.name)})` : ''
  const lines = [`training job ${printable(String(e.jobId))}${named}: ${printable(String(e.status))}, round ${Number(e.round) + 1}/${String(e.rounds)}, routing ${printable(String(e.routing))}`]
  const group = (e.members ?? []) as Array<{ peer: string, rank: number | null, route: any }>
  lines.push(group.length === 0 ? 'members: none in the group now' : `members (${group.length}, by rank: each one's data shard):`)
  for (const m of group.slice(0, 64)) {
    const route = m.route == null ? 'no route yet' : `${describeRoute(m.route)}${typeof m.route.facts === 'string' && m.route.facts !== '' ? ` (${m.route.facts})` : ''}`
    lines.push(`  rank ${m.rank ?? '?'}  ${printable(m.peer)}: ${printable(route)}`)
  }
  const drops = (e.drops ?? []) as Array<{ round: number, peer: string, back: boolean }>
  if (drops.length > 0) {
    const out = new Set(drops.filter(d => !d.back).map(d => d.peer)).size
    lines.push(`dropped (${plural(drops.length, 'drop')}; ${plural(out, 'peer')} not back):`)
    if (drops.length > 16) lines.push(`  ... ${drops.length - 16} earlier drops (--json lists them all)`)
    for (const d of drops.slice(-16)) lines.push(`  round ${d.round + 1}: ${printable(d.peer)}${d.back ? ', back in the group since' : ', not back'}`)
  }
  if (e.error != null) lines.push(`error: ${printable(String(e.error.code ?? ''))}${e.error.code != null ? ': ' : ''}${printable(String(e.error.message ?? ''))}`)
  const refusals = (e.refusals ?? []) as Array<{ peer: string, code: string | null, reason: string }>
  if (refusals.length > 0) {
    lines.push(`refused (${refusals.length}):`)
    for (const r of refusals.slice(-16)) lines.push(`  ${printable(r.peer)}: ${r.code == null ? '' : `${printable(r.code)}: `}${printable(r.reason)}`)
  }
  return lines
}
