// `npm run demo`: the main job on the embedded defaults. Starts a local network of peers as
// separate processes on 127.0.0.1 (one bootstrap), shows them finding each other through the
// DHT, and prints a summary; then exits, removing its processes and temp dirs.
import { join } from 'node:path'
import { LocalNetwork, repoRoot, type NodeSpec } from './network.js'
import { runFractalJob } from './fractal.js'
import { table } from '../src/cli/output.js'

const PEERS: NodeSpec[] = [
  { name: 'tokyo', location: 'Tokyo', gpus: '2xRTX4090:24GiB' },
  { name: 'frankfurt', location: 'Frankfurt', gpus: 'A100:80GiB' },
  { name: 'ashburn', location: 'Ashburn', gpus: '4xRTX3090:24GiB' },
  { name: 'saopaulo', location: 'Sao Paulo', gpus: 'RTX3080:10GiB' },
  { name: 'singapore', location: 'Singapore', gpus: 'RTX4090:24GiB' }
]

function gpuCount (spec: string | undefined): number {
  return (spec ?? '').split(',').filter(Boolean).reduce((n, part) => n + Number(part.match(/^(\d+)x/)?.[1] ?? 1), 0) || 1
}
/** Wei (decimal string) as DBC with up to 9 decimals. */
function coins (wei: string | bigint): string {
  const v = BigInt(wei)
  const whole = v / 10n ** 18n
  const frac = (v % 10n ** 18n).toString().padStart(18, '0').slice(0, 9).replace(/0+$/, '')
  return frac === '' ? whole.toString() : `${whole.toString()}.${frac}`
}

const t0 = Date.now()
const step = (s: string): void => { process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${s}\n`) }
const net = new LocalNetwork()
let exitCode = 0
const onSignal = (): void => { void net.stop().then(() => process.exit(130)) }
process.once('SIGINT', onSignal)
process.once('SIGTERM', onSignal)

try {
  step(`starting ${PEERS.length} peers as separate processes on 127.0.0.1 (data in ${net.root})`)
  const boot = await net.start(PEERS[0])
  step(`bootstrap peer ${PEERS[0].name} is ${boot.peerId} at ${boot.addrs[0]}`)
  const rest = await Promise.all(PEERS.slice(1).map(async p => await net.start(p, [boot.addrs[0]])))
  for (const n of rest) step(`peer ${n.spec.name.padEnd(10)} ${n.peerId} joined through the bootstrap peer`)

  // Each peer looks every other peer up through the DHT (no cached answers).
  step('every peer looks up every other peer in the DHT')
  const lookups: number[] = []
  let found = 0; let failed = 0
  for (const a of net.nodes) {
    for (const b of net.nodes) {
      if (a === b) continue
      // routing tables are still settling in the first seconds: a miss is retried twice
      let ok = false; let lastError = ''
      for (let attempt = 0; attempt < 3 && !ok; attempt++) {
        if (attempt > 0) await new Promise(resolve => setTimeout(resolve, 500))
        try {
          const r = await a.api.call<{ ms: number, addrs: string[] }>('GET', `/v1/dht/find-peer/${b.peerId}`)
          if (r.addrs.length > 0) { ok = true; lookups.push(r.ms) } else lastError = 'found without addresses'
        } catch (err) { lastError = (err as Error).message }
      }
      if (ok) found++
      else { failed++; step(`  ${a.spec.name} could not find ${b.spec.name}: ${lastError}`) }
    }
  }
  lookups.sort((x, y) => x - y)
  step(`DHT lookups: ${found} found, ${failed} failed; median ${lookups[Math.floor(lookups.length / 2)]?.toFixed(1) ?? '-'} ms`)

  const rows: string[][] = []
  for (const n of net.nodes) {
    const s = await n.api.call<Record<string, any>>('GET', '/v1/status')
    rows.push([n.spec.name, n.peerId.slice(0, 16) + '…', s.location === null ? '-' : `${String(s.location.name ?? '')} ${Number(s.location.lat).toFixed(2)},${Number(s.location.lon).toFixed(2)}`.trim(), n.spec.gpus ?? '-', String(s.peers), String(s.dht.routingTable)])
  }
  process.stdout.write('\n' + table(['PEER', 'ID', 'LOCATION', 'GPUS (declared)', 'CONNECTED', 'DHT TABLE'], rows))

  // The capability index: who offers a GPU, nearest to Tokyo first (records are published
  // in the DHT under (capability, geo cell) keys and searched ring by ring).
  await new Promise(resolve => setTimeout(resolve, 2000)) // first publication after start
  const gpuPeers = await boot.api.call<{ results: Array<{ peerId: string, distanceKm: number }>, ms: number }>('GET', '/v1/capabilities?capability=gpu&want=10')
  const nameOf = (id: string): string => net.nodes.find(n => n.peerId === id)?.spec.name ?? id.slice(0, 12)
  step(`capability query "gpu" from tokyo (${gpuPeers.ms.toFixed(0)} ms): ${gpuPeers.results.map(r => `${nameOf(r.peerId)} ${Math.round(r.distanceKm)} km`).join(', ')}`)
  if (failed > 0) exitCode = 1

  // The chain: the embedded EVM runs inside the submitter's node (the demo's single chain).
  // Providers' payouts go to their own accounts, which must be staked there (per GPU).
  const wallets = new Map<string, string>()
  for (const n of net.nodes) wallets.set(n.peerId, (await n.api.call<{ account: string }>('GET', '/v1/wallet')).account)
  const chainStatus = await boot.api.call<Record<string, any>>('GET', '/v1/chain/status')
  step(`embedded chain ${String(chainStatus.chainId)} in ${PEERS[0].name}'s node, settlement contract ${String(chainStatus.contract)}`)
  for (const n of rest) {
    const gpus = gpuCount(n.spec.gpus)
    const r = await boot.api.call<Record<string, any>>('POST', '/v1/chain/stake', { gpus, provider: wallets.get(n.peerId) })
    step(`  staked ${coins(r.amount)} DBC for ${gpus} GPU(s) of ${n.spec.name} (${String(wallets.get(n.peerId))})`)
  }

  // The main job: a grid job from the first peer (the user) across the others.
  step('submitting a grid job from tokyo: a Mandelbrot image in 64x64 tiles, one wasm task per tile')
  let lastPct = -1
  const job = await runFractalJob(boot, join(net.root, 'job'), join(repoRoot, 'demo', 'out'), {
    onProgress: (done, total) => {
      const pct = Math.floor(done / total * 10) * 10
      if (pct !== lastPct) { lastPct = pct; step(`  job progress ${String(pct).padStart(3)}% (${done}/${total} tiles)`) }
    }
  })
  const sum = job.status.summary ?? {}
  step(`job ${job.jobId.slice(0, 16)}… ${String(job.status.status)}: image written to ${job.png}`)
  process.stdout.write('\n' + table(['JOB', ''], [
    ['tasks', `${String(job.status.done)}/${String(job.status.tasks)} done, ${String(job.status.failed)} failed`],
    ['peers used', String(sum.providersUsed ?? '-')],
    ['retries', `${String(sum.retries ?? 0)} (speculative ${String(sum.speculative ?? 0)})`],
    ['time', `${((sum.elapsedMs ?? 0) / 1000).toFixed(2)} s`],
    ['cost (predicted)', `${Number(sum.predictedCost ?? 0).toPrecision(3)} DBC`],
    ['billed (receipts)', `${coins(BigInt(Math.round(Number(sum.meteredSpent ?? 0) * 1e18)))} DBC`],
    ['billed copies', String(job.status.billedCopies)]
  ]))

  // Settlement: the job's signed usage receipts, batched under one merkle root, paid once.
  step('settling the job\'s usage receipts on the embedded chain')
  const settled = await boot.api.call<{ receipts: number, total: string, batches: Array<Record<string, any>> }>('POST', `/v1/jobs/${job.jobId}/settle`, undefined, { timeoutMs: 120_000 })
  for (const b of settled.batches) step(`  batch ${String(b.batchId).slice(0, 18)}… ${String(b.state)}: ${String(b.receiptCount)} receipts, ${coins(b.total)} DBC, tx ${String(b.txHash ?? '-').slice(0, 18)}…`)
  const again = await boot.api.call<{ batches: Array<Record<string, any>> }>('POST', `/v1/jobs/${job.jobId}/settle`, undefined, { timeoutMs: 120_000 })
  step(`  settling again is a no-op: ${again.batches.length} batch(es), still ${again.batches.map(b => String(b.state)).join(', ')}`)
  const payoutRows: string[][] = []
  let paidTotal = 0n
  for (const n of rest) {
    const p = await boot.api.call<Record<string, any>>('GET', `/v1/chain/payouts?provider=${String(wallets.get(n.peerId))}`)
    paidTotal += BigInt(p.totalPaid)
    payoutRows.push([n.spec.name, String(wallets.get(n.peerId)), `${coins(p.totalPaid)} DBC`, `${coins(p.withdrawable)} DBC`])
  }
  process.stdout.write('\n' + table(['PROVIDER', 'PAYOUT ADDRESS', 'PAID', 'WITHDRAWABLE'], payoutRows))
  process.stdout.write(`\nsummary: ${net.nodes.length} peers, ${found}/${found + failed} DHT lookups succeeded, ${job.tiles} tiles rendered across ${String(sum.providersUsed ?? '?')} peers, ${settled.receipts} receipts settled (${coins(paidTotal)} DBC paid), ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  exitCode = 1
} finally {
  step('stopping peers and removing temp dirs')
  await net.stop()
}
process.exit(exitCode)
