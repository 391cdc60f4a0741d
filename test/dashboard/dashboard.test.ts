// The web dashboard, end to end: three real daemons (Tokyo, Frankfurt, São Paulo) on one local
// chain; the Tokyo node runs a finished grid job, a grid job still running when the page is read
// (tasks that hold a provider's whole CPU, so one waits), and a finished training job. Headless
// Chromium (Debian's, driven by playwright-core) signs in through `dbc dashboard`'s one-time link
// and each page is checked against the CLI and the API: peers on the map at their cities, the
// jobs' task counts as `dbc job status --json` gives them, one loss point per round, and a
// provider's earnings as `dbc earnings --json` gives them. A screenshot of each page is saved
// under test-output/dashboard/. No timed assertion: every wait ends when its condition holds.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, existsSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { writeSquaresJob } from '../security/harness.js'
import { dbcAsync } from '../helpers/cli.js'
import { waitFor as waitForAt } from '../helpers/wait.js'

const CHROMIUM = process.env.DBC_CHROMIUM ?? '/usr/bin/chromium'
const OUT = join(repoRoot, 'test-output', 'dashboard')
const EXTRA = ['--no-connection-monitor']
// a daemon's start (tsx compiling, the chain's first reads) took 60 s under a load average of 30
const START = { timeoutMs: 180_000 }
const TRAINING = { model: { kind: 'mlp', hidden: 16 }, dataset: { trainPerClass: 40, testPerClass: 40 }, groupSize: 2, rounds: 5, localSteps: 4, batchSize: 16, learningRate: 0.1, seed: 3, evalEvery: 1, deadline: { initialMs: 30_000 } }

const net = new LocalNetwork()
let tokyo: LocalNode
let providers: LocalNode[] = []
let browser: Browser | undefined
const pageErrors: string[] = []
/** The page last opened: screenshotted as failure.png when an assertion fails. */
let lastPage: Page | undefined

const t0 = Date.now()
/** Where the time goes (printed, never asserted). */
const phase = (what: string): void => { console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`) }

/** Waits up to 180 s by default (daemons on a loaded box). */
const waitFor = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 180_000): Promise<T> => await waitForAt(what, fn, ms)

async function cliJson (node: LocalNode, args: string[]): Promise<any> {
  const r = await dbcAsync(['--data-dir', node.dataDir, ...args, '--json'], { timeoutMs: 120_000 })
  assert.is(r.code, 0, `dbc ${args.join(' ')}: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

/** Signs a fresh browser context in through `dbc dashboard` (or its API call) on `node` and opens `hash`. */
async function openDashboard (node: LocalNode, hash = 'network', via: 'cli' | 'api' = 'cli'): Promise<Page> {
  const { url } = via === 'cli' ? await cliJson(node, ['dashboard']) : await node.api.call<{ url: string }>('POST', '/v1/dashboard/link')
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/dashboard\/login\?t=[0-9a-f]{64}$/)
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  page.on('console', m => { if (m.type() === 'error') pageErrors.push(`${node.spec.name}: ${m.text()}`) })
  page.on('pageerror', e => { pageErrors.push(`${node.spec.name}: ${e.message}`) })
  lastPage = page
  await page.goto(url)
  assert.match(page.url(), /\/dashboard\/$/)
  // a used link does not sign in twice
  const again = await context.request.get(url, { maxRedirects: 0 })
  assert.is(again.status(), 401)
  await show(page, hash)
  return page
}

async function show (page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => { (globalThis as any).location.hash = h }, hash)
  await page.waitForSelector(`[data-testid=page][data-page=${hash}][data-ready=true]`, { timeout: 120_000 })
}

async function shot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true })
}

test.before(async () => {
  // uvu reports nothing when a hook throws: say what failed here
  try {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup-chromium.sh`)
    mkdirSync(OUT, { recursive: true })
    // all three start at once (a start is most of this test's time on a loaded machine); the
    // providers then dial Tokyo, which is all a bootstrap address would do
    ;[tokyo, ...providers] = await Promise.all([
      net.start({ name: 'tokyo', location: 'Tokyo', extra: EXTRA }, [], START),
      net.start({ name: 'frankfurt', location: 'Frankfurt', extra: EXTRA }, [], START),
      net.start({ name: 'saopaulo', location: 'Sao Paulo', extra: EXTRA }, [], START)
    ])
    await Promise.all(providers.map(async p => await p.api.call('POST', '/v1/ping', { peer: tokyo.addrs[0], count: 1 }, { timeoutMs: 60_000 })))
    phase('three daemons up')
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
  } catch (err) {
    console.error('set-up failed:', err)
    throw err
  }
})

test.after(async () => {
  await browser?.close().catch(() => {})
  await net.stop()
})

test('the dashboard shows the network, the jobs, the training and the earnings as the node reports them', async () => {
  // both providers connected and placed at their declared cities (gossip or their capability records;
  // until one arrives a peer is placed by its Vivaldi coordinate beside the nearest located node)
  const network = await waitFor('providers on the map with their cities', async () => {
    const v = await tokyo.api.call<any>('GET', '/v1/dashboard/network')
    const placed = providers.every(p => v.peers.some((x: any) => x.peerId === p.peerId && x.connected && x.placement === 'declared'))
    return placed ? v : undefined
  })
  phase('providers placed at their cities')
  const cityOf = (p: LocalNode): string => network.peers.find((x: any) => x.peerId === p.peerId).city
  assert.match(cityOf(providers[0]), /^Frankfurt/)
  assert.match(cityOf(providers[1]), /^S[aã]o Paulo/)
  assert.match(network.self.city, /^Tokyo/)

  // a finished grid job
  const dir = join(net.root, 'jobs')
  mkdirSync(dir, { recursive: true })
  const squares = writeSquaresJob(dir, 24, 5, 'squares')
  const { jobId: doneJob } = await tokyo.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest: squares, baseDir: dir }, { timeoutMs: 30_000 })
  // training on both providers, while the grid job runs
  const { jobId: trainJob } = await tokyo.api.call<{ jobId: string }>('POST', '/v1/training', { spec: TRAINING, peers: providers.map(p => p.peerId) })
  const finished = await waitFor('the grid job to end', async () => {
    const s = await tokyo.api.call<any>('GET', `/v1/jobs/${doneJob}`)
    return s.status === 'running' ? undefined : s
  })
  assert.is(finished.status, 'finished')
  const trained = await waitFor('the training job to end', async () => {
    const t = await tokyo.api.call<any>('GET', `/v1/training/${trainJob}`)
    return t.status === 'running' ? undefined : t
  })
  assert.is(trained.status, 'done', JSON.stringify(trained.error))
  assert.is(trained.history.length, TRAINING.rounds)
  phase('grid job and training job done')

  // the pages that need no running job first: the held job's tasks spin a CPU each until it is
  // cancelled, so it runs only while the Jobs page is checked
  let runJob = ''
  try {
    // --- Network
    const page = await openDashboard(tokyo, 'network')
    const mapped = await page.$$eval('[data-testid=map-peer]', els => els.map(e => ({ peer: (e as any).dataset.peer, city: (e as any).dataset.city })))
    for (const p of providers) {
      const m = mapped.find(x => x.peer === p.peerId)
      assert.ok(m !== undefined, `${p.spec.name} is on the map`)
      assert.is(m.city, cityOf(p))
    }
    const labels = await page.$$eval('[data-testid=map-label]', els => els.map(e => e.textContent))
    for (const want of [/^Tokyo/, /^Frankfurt/, /^S[aã]o Paulo/]) assert.ok(labels.some(l => want.test(l ?? '')), `a map label matches ${String(want)}: ${labels.join(', ')}`)
    assert.is(await page.$$eval('[data-testid=map-self]', els => els.length), 1)
    // one link per connected peer, coloured by its measured RTT class
    assert.ok(await page.$$eval('.map .link', els => els.length) >= 2)
    const rt = Number(await page.textContent('[data-testid=routing-table]'))
    assert.ok(Number.isInteger(rt) && rt >= 1, `routing table ${rt}`)
    assert.ok(Number(await page.textContent('[data-testid=membership-view]')) >= 0)
    await shot(page, 'network')

    phase('network page checked')
    // --- Training: one loss point per round
    await show(page, 'training')
    await page.waitForSelector(`[data-testid=training-detail][data-job="${trainJob}"]`)
    const points = await page.evaluate(() => {
      const g = globalThis as any
      const c = g.Chart.getChart(g.document.querySelector('[data-testid=loss-chart]'))
      return c.data.datasets[0].data.map((p: { x: number, y: number }) => p.x)
    })
    // rounds are shown from 1, as `dbc job status` and the job list print them (the API counts from 0)
    assert.equal(points, trained.history.map((h: any) => h.round + 1))
    assert.is(await page.$$eval('[data-testid=round-row]', els => els.length), TRAINING.rounds)
    assert.is(await page.textContent('[data-testid=round-row] td'), '1')
    assert.is(await page.$$eval('[data-testid=member-row]', els => els.length), 2)
    await shot(page, 'training')

    // --- Node
    await show(page, 'node')
    assert.is(await page.textContent('[data-testid=peer-id]'), tokyo.peerId)
    assert.match(await page.textContent('[data-testid=reachability]') ?? '', /local-only/)
    assert.match(await page.textContent('[data-testid=executors]') ?? '', /wasm/)
    await shot(page, 'node')

    phase('training and node pages checked')

    // a job still running: each task holds a whole provider (all its cores) and never returns on
    // its own, so one task per provider runs and the third waits for a slot
    const loopDir = join(net.root, 'loop')
    mkdirSync(loopDir, { recursive: true })
    const loop = {
      name: 'held',
      executor: 'wasm',
      code: { wasm: join(repoRoot, 'src/compute/modules/loop.wasm') },
      entry: 'run',
      inputs: { range: { from: 0, to: 2 } },
      resources: { cores: cpus().length },
      verification: { mode: 'off' },
      task: { timeoutMs: 300_000, expectedMs: 1000, maxAttempts: 1, waitS: 600 }
    }
    ;({ jobId: runJob } = await tokyo.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest: loop, baseDir: loopDir }, { timeoutMs: 30_000 }))
    // one task per provider runs and the third waits (a job with copies queued behind a busy lease
    // asks for more leases: the placement race of an earlier session is fixed), and stays so
    const held = await waitFor('a task running on each provider and one waiting', async () => {
      const s = await tokyo.api.call<any>('GET', `/v1/jobs/${runJob}`)
      return s.status === 'running' && s.running === 2 && s.queued === 1 ? s : undefined
    })

    phase('held job running')
    // --- Jobs: the running job's and the finished job's counts equal `dbc job status --json`
    await show(page, 'jobs')
    const statuses = await Promise.all([runJob, doneJob].map(async id => await cliJson(tokyo, ['job', 'status', id])))
    for (const [i, id] of [runJob, doneJob].entries()) {
      const st = statuses[i]
      const row = `[data-testid=job-row][data-job="${id}"]`
      await page.waitForSelector(row)
      const cells = async (): Promise<Record<string, number>> => Object.fromEntries(await Promise.all(['tasks', 'queued', 'running', 'done', 'failed'].map(async k => [k, Number(await page.textContent(`${row} [data-testid=job-${k}]`))])))
      assert.equal(await cells(), { tasks: st.tasks, queued: st.queued, running: st.running, done: st.done, failed: st.failed }, `job ${id}`)
    }
    // the running job in detail: one copy running on each provider, the third task waiting
    await page.click(`[data-testid=job-row][data-job="${runJob}"]`)
    await page.waitForSelector(`[data-testid=job-detail][data-job="${runJob}"]`)
    const provRows = await page.$$eval('[data-testid=provider-row]', els => els.map(e => (e as any).dataset.provider))
    assert.is(provRows.length, held.running, 'one provider row per running copy')
    for (const p of provRows) assert.ok(providers.some(x => x.peerId === p), `provider row ${String(p)} is one of the providers`)
    const states = await page.$$eval('[data-testid=task-row]', els => els.map(e => (e as any).dataset.state))
    assert.equal([...states].sort(), [...Array(held.queued).fill('queued'), ...Array(held.running).fill('running')].sort())
    await shot(page, 'jobs')
    // the finished job: every task done, with a results link
    await page.click(`[data-testid=job-row][data-job="${doneJob}"]`)
    await page.waitForSelector(`[data-testid=job-detail][data-job="${doneJob}"] [data-testid=results-link]`)
    assert.is(await page.textContent('[data-testid=detail-done]'), '24')
    const doneByProvider = (await page.$$eval('[data-testid=provider-done]', els => els.map(e => Number(e.textContent)))).reduce((a, b) => a + b, 0)
    // per provider: its agreed copies (both providers of a checked task count it), so the sum is the job's agreed copies
    assert.is(doneByProvider, statuses[1].copiesByOutcome?.agreed, JSON.stringify(statuses[1].copiesByOutcome))
    assert.ok(doneByProvider >= 24)
    const results: any = await page.evaluate(async (href) => await (await fetch(href)).json(), `/v1/jobs/${doneJob}/results`)
    assert.is(results.results.length, 24)
    await shot(page, 'jobs-finished')

    phase('jobs page checked')
    // live updates: the open Jobs page follows the node's event stream (no reload) as the held job is cancelled
    await show(page, 'jobs')
    await page.waitForSelector(`[data-testid=job-row][data-job="${runJob}"] .badge.running`)
    await tokyo.api.call('POST', `/v1/jobs/${runJob}/cancel`, undefined, { timeoutMs: 60_000 })
    await page.waitForSelector(`[data-testid=job-row][data-job="${runJob}"] .badge.cancelled`, { timeout: 120_000 })
    assert.is(await page.textContent('#live'), 'live')
    await page.context().close()

    phase('jobs page and live update checked')
    // --- Earnings, on a provider: equal to `dbc earnings --json` (read again until two CLI reads agree)
    const provider = providers[0]
    const ppage = await openDashboard(provider, 'earnings', 'api')
    for (let attempt = 0; ; attempt++) {
      const before = await cliJson(provider, ['earnings'])
      await show(ppage, 'network')
      await show(ppage, 'earnings')
      const rows = await ppage.$$eval('[data-testid=earnings-row]', els => els.map(e => ({ ...(e as any).dataset })))
      const shown = { signed: await ppage.textContent('[data-testid=total-signed]'), redeemed: await ppage.textContent('[data-testid=total-redeemed]'), pending: await ppage.textContent('[data-testid=total-pending]') }
      const after = await cliJson(provider, ['earnings'])
      if (JSON.stringify(before) !== JSON.stringify(after) && attempt < 20) continue
      assert.ok(before.jobs.length >= 1, 'the provider was paid for something')
      assert.equal(rows.map(r => ({ job: r.job, signed: r.signed, redeemed: r.redeemed, pending: r.pending })),
        before.jobs.map((j: any) => ({ job: j.chainJobId, signed: j.signed, redeemed: j.redeemed, pending: j.pending })))
      const fmt = await ppage.evaluate(async ({ lib, t }) => { const m = await import(lib); return [m.dbc(t.signed), m.dbc(t.redeemed), m.dbc(t.pending)] }, { lib: '/dashboard/lib.js', t: before.totals })
      assert.equal([shown.signed, shown.redeemed, shown.pending], fmt)
      break
    }
    await shot(ppage, 'earnings')
    phase('earnings page checked')
    await ppage.context().close()
    assert.equal(pageErrors, [], 'no script or CSP errors in the pages')
  } catch (err) {
    await lastPage?.screenshot({ path: join(OUT, 'failure.png'), fullPage: true }).catch(() => {})
    console.error(`page errors: ${pageErrors.join('\n') || 'none'}; the page at the failure: ${join(OUT, 'failure.png')}`)
    throw err
  } finally {
    if (runJob !== '') await tokyo.api.call('POST', `/v1/jobs/${runJob}/cancel`, undefined, { timeoutMs: 30_000 }).catch(() => {})
  }
})

test.run()
