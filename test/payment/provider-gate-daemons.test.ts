// The provider's payment gate between real daemons on one anvil (demo/network.ts LocalNetwork):
// an honest submitter node made to cheat by a preloaded test fixture
// (test/payment/fixtures/misbehaving-payer.ts, NODE_OPTIONS=--import; nothing in src/ knows it):
// - one that skips its escrow deposit gets no work: its job ends with "no escrow for job J on chain C";
// - one that stops sending vouchers after two gets no more than the provider's credit of free work
//   (plus the tasks admitted at its edge), then its tasks are refused "payer is N DBC behind".
process.env.DBC_SKIP_BENCHMARK = '1'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { encodeTileInput } from '../../src/compute/mandelbrot.js'
import { cpus } from 'node:os'
import { decimalToUnits } from '../../src/core/compute/pricing.js'
import { taskPriceUnits } from '../../src/core/settlement/credit.js'
import { recordsJobManifest } from '../helpers/manifest.js'

const FIXTURE = pathToFileURL(join(repoRoot, 'test/payment/fixtures/misbehaving-payer.ts')).href
const TIMEOUT_MS = 10_000
/** The provider's credit: a twentieth of one task's price at its timeout (~0.5 s of CPU: a few tiles). */
const CREDIT_TASKS = 0.05

interface PaymentRow { chainJobId: string, delivered: string, signed: string, behind: string, maxBehind: string, inflight: number, tasks: number, refusals: number, lastRefusal?: string }

/** Starts a submitter with the fixture in `mode` and a provider with `creditTasks`, connected. */
async function pair (net: LocalNetwork, mode: string): Promise<{ submitter: LocalNode, provider: LocalNode }> {
  const saved = { opts: process.env.NODE_OPTIONS, mode: process.env.DBC_TEST_PAYER }
  process.env.NODE_OPTIONS = `${saved.opts ?? ''} --import tsx --import ${FIXTURE}`.trim()
  process.env.DBC_TEST_PAYER = mode
  let submitter: LocalNode
  try {
    submitter = await net.start({ name: 'submitter', location: '52.52,13.40', extra: ['--no-connection-monitor'] }, [], { timeoutMs: 120_000 })
  } finally {
    // (assigning undefined to process.env would set the text "undefined")
    if (saved.opts === undefined) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = saved.opts
    if (saved.mode === undefined) delete process.env.DBC_TEST_PAYER; else process.env.DBC_TEST_PAYER = saved.mode
  }
  mkdirSync(join(net.root, 'provider'), { recursive: true })
  writeFileSync(join(net.root, 'provider', 'config.yaml'), `provider:\n  creditTasks: ${CREDIT_TASKS}\n`)
  const provider = await net.start({ name: 'provider', location: '52.52,13.40', extra: ['--no-connection-monitor'] }, submitter.addrs.slice(0, 1), { timeoutMs: 120_000 })
  const end = Date.now() + 60_000
  for (;;) {
    const { peers } = await submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
    if (peers.some(p => p.peerId === provider.peerId)) break
    if (Date.now() > end) throw new Error('the provider did not connect')
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return { submitter, provider }
}

/** A Mandelbrot grid job (one tile per task) with the default checks off (one provider here). */
async function submit (node: LocalNode, dir: string, tiles: number): Promise<string> {
  // every tile inside the set (each pixel iterates to the limit): ~0.1 s of CPU per task
  const tile = encodeTileInput(-0.2, 0, 1e-4, 16, 16, 100_000)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'tiles.bin'), Buffer.concat(Array.from({ length: tiles }, () => tile)))
  const manifest = recordsJobManifest('gate-fractal', 'mandelbrot', 'tiles.bin', {
    resources: { cores: 1, memoryMib: 64 },
    verification: { redundancy: 1, mode: 'off' },
    budget: { total: 1 },
    task: { timeoutMs: TIMEOUT_MS, expectedMs: 50, maxAttempts: 3 }
  })
  const { jobId } = await node.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 30_000 })
  return jobId
}

async function ended (node: LocalNode, jobId: string, ms = 240_000): Promise<Record<string, any>> {
  const end = Date.now() + ms
  for (;;) {
    const st = await node.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 10_000 })
    if (st.status !== 'running' && st.status !== 'queued') return st
    if (Date.now() > end) throw new Error(`job ${jobId} still ${String(st.status)} after ${ms} ms: ${JSON.stringify(st).slice(0, 500)}`)
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}

async function payments (node: LocalNode): Promise<PaymentRow[]> {
  const st = await node.api.call<{ compute: { payments?: PaymentRow[] } }>('GET', '/v1/status')
  return st.compute.payments ?? []
}

const wei = (dbc: string): bigint => decimalToUnits(dbc.replace(/ DBC$/, ''))

test('a submitter with no escrow gets no work, and its job says why', async () => {
  const net = new LocalNetwork()
  try {
    const { submitter, provider } = await pair(net, 'no-escrow')
    const jobId = await submit(submitter, join(net.root, 'job-no-escrow'), 4)
    const st = await ended(submitter, jobId)
    const text = JSON.stringify(st)
    assert.is.not(st.status, 'finished', 'the job finished without escrow')
    assert.match(text, /no escrow for job 0x[0-9a-f]{8}… on chain 31337/, `the job does not say why: ${text.slice(0, 1500)}`)
    const rows = await payments(provider)
    assert.ok(rows.every(r => r.tasks === 0), `the provider worked without escrow: ${JSON.stringify(rows)}`)
  } finally {
    await net.stop()
  }
})

test('a submitter that stops signing gets at most the provider\'s credit of free work', async () => {
  const net = new LocalNetwork()
  try {
    const { submitter, provider } = await pair(net, 'stop-signing:2')
    const jobId = await submit(submitter, join(net.root, 'job-stops-signing'), 60)
    const st = await ended(submitter, jobId)
    const rows = await payments(provider)
    assert.is(rows.length, 1, JSON.stringify(rows))
    const row = rows[0]
    const price = taskPriceUnits({ priceGpuHour: 1, priceCpuHour: 0.05 }, 0, 1, TIMEOUT_MS)
    const credit = price * BigInt(CREDIT_TASKS * 1000) / 1000n
    const behind = wei(row.delivered) - wei(row.signed)
    assert.ok(row.refusals > 0 && /^PAYER_BEHIND: payer is [0-9.]+ DBC behind/.test(row.lastRefusal ?? ''), `the provider never refused: ${JSON.stringify(row)}`)
    assert.ok(row.tasks < 60, `all ${row.tasks} tasks ran unpaid`)
    // free work: the credit, plus the tasks in flight when it was crossed (at most the offer's slots,
    // no more than this machine's cores, each at most one task's price)
    const slots = BigInt(cpus().length)
    assert.ok(wei(row.maxBehind) <= credit + slots * price, `unsigned work ${row.maxBehind} is above the credit (${credit} wei) plus ${slots} tasks in flight`)
    assert.ok(behind > 0n, 'some work went unsigned (the fixture stopped the vouchers)')
    assert.is.not(st.status, 'finished', 'the job finished although the provider stopped working for it')
    // the refusal reached the submitter with its code and reason (`dbc job explain JOB --task N`)
    const seen: string[] = []
    for (let i = 0; i < 60 && seen.length === 0; i++) {
      const ex = await submitter.api.call<{ task?: { copies: Array<{ error?: string }> } }>('GET', `/v1/jobs/${jobId}/explain?task=${i}`)
      for (const c of ex.task?.copies ?? []) if (/^PAYER_BEHIND: payer is [0-9.]+ DBC behind on job 0x/.test(c.error ?? '')) seen.push(c.error ?? '')
    }
    assert.ok(seen.length > 0, 'no task copy of the job carries the provider\'s PAYER_BEHIND refusal')
  } finally {
    await net.stop()
  }
})

test.run()
