// `dbc id`, `dbc peers`, `dbc ping`
import type { Command } from 'commander'
import { readPublicIdentity } from './identity-read.js'
import { DbcError } from '../errors.js'
import { printJson, table, formatDbc } from './output.js'
import { dataDirOf, identityFileOf, clientOf } from './context.js'

export function registerNetworkCommands (program: Command): void {
  program.command('id')
    .description('show this node\'s peer id and public key (read from the data dir; no running node needed)')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const dataDir = dataDirOf(cmd)
      const identity = await readPublicIdentity(dataDir)
      if (identity === undefined) {
        throw new DbcError('NO_IDENTITY', `no identity in ${dataDir} yet (${identityFileOf(dataDir)} is missing)`, { hint: 'run `dbc node start` once to create one' })
      }
      let addrs: string[] = []
      try {
        addrs = (await (await clientOf(cmd)).call<{ addrs: string[] }>('GET', '/v1/id', undefined, { timeoutMs: 3000 })).addrs
      } catch {} // no node running: the addresses are not known
      const out = { peerId: identity.peerId, publicKey: Buffer.from(identity.publicKey).toString('base64'), addrs }
      if (opts.json === true) return printJson(out)
      process.stdout.write(`${out.peerId}\n` + addrs.map(a => `  ${a}\n`).join(''))
    })

  program.command('peers')
    .description('list the peers this node is connected to')
    .option('--json', 'print JSON')
    .option('--near', 'sort by predicted latency and show predicted beside measured RTT')
    .action(async (opts, cmd: Command) => {
      const client = await clientOf(cmd)
      const path = opts.near === true ? '/v1/peers/near' : '/v1/peers'
      const { peers } = await client.call<{ peers: Array<Record<string, any>> }>('GET', path)
      if (opts.json === true) return printJson({ peers })
      if (peers.length === 0) {
        process.stdout.write('no peers connected (is the node bootstrapped? see `dbc node status`)\n')
        return
      }
      const near = opts.near === true
      const head = near ? ['PEER', 'PREDICTED RTT', 'MEASURED RTT', 'DISTANCE', 'LOCATION'] : ['PEER', 'ADDRESS', 'DIRECTION']
      const rows = peers.map(p => near
        ? [p.peerId, ms(p.predictedRttMs), ms(p.measuredRttMs), typeof p.distanceKm === 'number' ? `${Math.round(p.distanceKm)} km` : '-', p.location === undefined || p.location === null ? '-' : `${String(p.location.lat)},${String(p.location.lon)}`]
        : [p.peerId, p.addr, p.direction])
      process.stdout.write(table(head, rows))
    })

  program.command('find')
    .description('find peers with a capability, nearest first (the DHT capability index, ring by ring)')
    .argument('<capability>', 'e.g. gpu:RTX4090, gpu, cpu, executor:wasm')
    .option('--near <where>', 'search around LAT,LON instead of this node\'s location')
    .option('--want <n>', 'how many peers are enough', (v) => Number(v), 10)
    .option('--fresh', 'skip the cache')
    .option('--json', 'print JSON')
    .action(async (capability: string, opts, cmd: Command) => {
      const q = new URLSearchParams({ capability, want: String(opts.want) })
      if (opts.fresh === true) q.set('fresh', '1')
      if (opts.near !== undefined) {
        const m = String(opts.near).match(/^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/)
        if (m == null) throw new DbcError('BAD_ARGUMENT', `--near must be LAT,LON (e.g. 48.85,2.35), not "${String(opts.near)}"`)
        q.set('lat', m[1]); q.set('lon', m[2])
      }
      const r = await (await clientOf(cmd)).call<{ results: Array<Record<string, any>>, ms: number, fromCache: boolean }>('GET', `/v1/capabilities?${q.toString()}`)
      if (opts.json === true) return printJson(r)
      if (r.results.length === 0) { process.stdout.write(`no peer with ${capability} found (${r.ms.toFixed(0)} ms)\n`); return }
      // the same predicted RTT as `dbc peers --near` (core/geo/predicted-rtt.ts); a provider with no
      // GPU has no GPU price ("0/0.05" read as free GPU-hours, user walk s14)
      process.stdout.write(table(['PEER', 'DISTANCE', 'PREDICTED RTT', 'GPUS', 'CORES', 'DBC PER GPU/CPU-H', 'EXECUTORS'], r.results.map(x => [x.peerId, `${Math.round(x.distanceKm)} km`, ms(x.predictedRttMs), (x.gpus as string[]).join(', ') || '-', String(x.cpuCores), `${(x.gpus as string[]).length === 0 ? '-' : formatDbc(x.priceGpuHour, { unit: false })}/${formatDbc(x.priceCpuHour, { unit: false })}`, (x.executors as string[]).join(',')])))
      process.stdout.write(`${r.results.length} peers in ${r.ms.toFixed(0)} ms${r.fromCache ? ' (from cache)' : ''}\n`)
    })

  program.command('ping')
    .description('measure the round-trip time to a peer (peer id or multiaddr)')
    .argument('<peer>', 'peer id (12D3Koo...) or multiaddr ending in /p2p/ID')
    .option('-c, --count <n>', 'number of pings', (v) => Number(v), 3)
    .option('--json', 'print JSON')
    .action(async (peer: string, opts, cmd: Command) => {
      if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 100) {
        throw new DbcError('BAD_ARGUMENT', `--count must be a whole number from 1 to 100 (got ${String(opts.count)})`)
      }
      const client = await clientOf(cmd)
      const r = await client.call<{ peer: string, rtts: number[] }>('POST', '/v1/ping', { peer, count: opts.count })
      if (opts.json === true) return printJson(r)
      for (const [i, rtt] of r.rtts.entries()) process.stdout.write(`ping ${i + 1}: ${rtt} ms\n`)
      const avg = r.rtts.reduce((a, b) => a + b, 0) / r.rtts.length
      process.stdout.write(`${r.rtts.length} pings to ${peer}: min ${Math.min(...r.rtts)} ms, avg ${avg.toFixed(1)} ms, max ${Math.max(...r.rtts)} ms\n`)
    })
}

function ms (v: unknown): string {
  return typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(1)} ms` : '-'
}
