// `dbc node status` as text: the node, its compute peer with the provider policy in force, and the
// overlay. Pure (status JSON in, rows out) so it is tested without a node.
import { formatDuration, formatDbc } from './output.js'
import { locationText } from '../core/geo/location.js'

type Status = Record<string, any>

const mib = (n: number): string => n >= 1024 && n % 1024 === 0 ? `${n / 1024} GiB` : `${n} MiB`
const bytes = (n: number): string => n >= 1048576 && n % 1048576 === 0 ? `${n / 1048576} MiB` : n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`

function gpuPrices (p: number | Record<string, number>): string {
  if (typeof p === 'number') return `${formatDbc(p)}/GPU-hour`
  return Object.entries(p).map(([m, v]) => `${m === '*' ? 'other GPUs' : m} ${formatDbc(v, { unit: false })}`).join(', ') + ' DBC/GPU-hour'
}

function limitsText (limits: Record<string, unknown>): string {
  return Object.entries(limits).map(([k, v]) => `${k} ${String(v)}`).join(', ')
}

/** Rows [label, value] for the compute section; none when the node runs no compute peer. */
export function computeRows (c: Status | undefined): string[][] {
  if (c === undefined || c.ready === false) return [['compute', c === undefined ? 'off' : 'starting']]
  const rows: string[][] = []
  const gpus = (c.gpus as Array<{ model: string, count: number, memoryMib: number, declared: boolean }>)
  rows.push(['compute', `${String(c.cpu.slots)} CPU slots (${String(c.cpu.cores)} cores, score ${Math.round(c.cpu.score)}), ${mib(c.memoryMib)} for tasks`])
  rows.push(['gpus', gpus.length === 0 ? 'none offered' : gpus.map(g => `${g.count}x ${g.model} ${mib(g.memoryMib)}${g.declared ? ' (declared)' : ''}`).join(', ')])
  const p = c.policy as Status | undefined
  if (p === undefined) return rows
  if ((p.gpus.withheld as number[]).length > 0) rows.push(['', `withheld by policy: GPU ${(p.gpus.withheld as number[]).join(', ')}`])
  rows.push(['prices', `${formatDbc(p.prices.cpuHour)}/CPU-hour, ${gpuPrices(p.prices.gpuHour)}`])
  let first = true
  for (const [name, e] of Object.entries(p.executors as Record<string, { enabled: boolean, available: boolean, reason?: string, limits: Record<string, unknown> }>)) {
    const state = !e.enabled ? 'off' : e.available ? 'on' : `unavailable: ${e.reason ?? 'unknown reason'}`
    rows.push([first ? 'executors' : '', `${name}: ${state}${e.enabled ? ` (${limitsText(e.limits)})` : ''}`])
    first = false
  }
  rows.push(['slots', `${String(p.slots.cpu)} CPU, ${String(p.slots.gpu)} GPU, ${mib(p.slots.memoryMiB)}, queue ${String(p.slots.queue)}`])
  rows.push(['max per task', `${mib(p.maxTask.memoryMiB)}, ${formatDuration(p.maxTask.wallSeconds * 1000)}, output ${bytes(p.maxTask.outputBytes)}, input ${bytes(p.maxTask.inputBytes)}`])
  rows.push(['trainers', (p.trainers as string[]).length === 0 ? 'none' : (p.trainers as string[]).join(', ')])
  rows.push(['images', (p.images as Array<{ name: string, image: string }>).length === 0 ? 'none' : (p.images as Array<{ name: string, image: string }>).map(i => `${i.name} (${i.image})`).join(', ')])
  // a counter of this process: after a restart an operator saw 0 beside earnings for hundreds of tasks
  rows.push(['tasks run', `${String(c.tasksRun ?? 0)} since this start (\`dbc earnings\`: every job served)`])
  return rows
}

/** Rows for the overlay section (membership view, known peers, Vivaldi, published capability records). */
export function overlayRows (o: Status | undefined): string[][] {
  if (o === undefined) return [['overlay', 'off']]
  const parts = [`view ${String(o.view ?? 0)}`, `${String(o.knownPeers ?? 0)} known peers`]
  if (typeof o.vivaldiError === 'number') parts.push(`Vivaldi error ${o.vivaldiError.toFixed(2)}`)
  parts.push(`${String(o.published ?? 0)} capability records published`)
  const rows = [['overlay', parts.join(', ')]]
  if (typeof o.publishError === 'string' && o.publishError !== '') rows.push(['', `publish failed: ${o.publishError as string}`])
  return rows
}

export function statusText (s: Status, table: (head: string[], rows: string[][]) => string): string {
  return table(['', ''], [
    ['peer id', s.peerId],
    ['pid', String(s.pid)],
    ['uptime', formatDuration(s.uptimeMs)],
    ['location', locationText(s.location)],
    ['peers', String(s.peers)],
    ['connections', String(s.connections)],
    ['dht', `${s.dht.mode}, ${s.dht.routingTable} in routing table`],
    ['data dir', s.dataDir],
    ...(s.addrs as string[]).map((a: string, i: number) => [i === 0 ? 'addresses' : '', a]),
    ...computeRows(s.compute),
    ...overlayRows(s.overlay),
    ...(s.metrics !== null && s.metrics !== undefined ? [['metrics', `http://${String(s.metrics)}/metrics`]] : [])
  ]).split('\n').slice(1).join('\n')
}
