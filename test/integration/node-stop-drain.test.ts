// `dbc node stop` drains (user16 #3): a provider stopped while it runs two copies of a slow wasm
// job lets them finish; their results go back with receipts and are billed once; new leases are
// refused meanwhile; the job completes. Before, the stop cut them short (PEER_STOPPED, unpaid) and
// the provider's log line said `billed=` as if they were paid.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox, dbcAsync, repoRoot } from '../helpers/cli.js'
import { ApiClient } from '../../src/api/client.js'
import { processAlive } from '../../src/api/client.js'

const sb = new Sandbox()
let submitter: { dataDir: string, peerId: string, addrs: string[] }
let provider: { dataDir: string, peerId: string, addrs: string[] }
let other: { dataDir: string, peerId: string, addrs: string[] }
// enough that the job still runs when `dbc node stop` (a fresh CLI process: seconds on a loaded box)
// reaches the provider: with 24 tasks of ~0.2 s, one clean-clone run under a CPU hog (session 18) got
// a stop output without its `draining:` line, likely a provider with nothing left to run by then (not
// reproduced in 5 runs alone, 3 of them under a hog; the assertion now prints what the stop said)
const TASKS = 64
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

test.before(async () => {
  submitter = await sb.startNode('submitter', ['--location', 'Paris', '--cpu-slots', '1'])
  provider = await sb.startNode('provider', ['--location', 'Berlin', '--bootstrap', submitter.addrs[0], '--cpu-slots', '2', '--log-level', 'info'])
  // the job's other provider, which runs what is left once the first one stopped
  other = await sb.startNode('other', ['--location', 'Vienna', '--bootstrap', submitter.addrs[0], '--cpu-slots', '1'])
})

/** The provider's task lines for `jobId` (logs/node*.log, JSON). */
function taskLines (dataDir: string, jobId: string): Array<Record<string, any>> {
  const dir = join(dataDir, 'logs')
  const out: Array<Record<string, any>> = []
  for (const f of readdirSync(dir).filter(f => /^node\.\d+\.log$/.test(f))) {
    for (const l of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!l.startsWith('{')) continue
      const j = JSON.parse(l) as Record<string, any>
      if (j.job === jobId || typeof j.msg === 'string') out.push(j)
    }
  }
  return out
}

test('a provider stopped while it runs two copies: both finish, are sent and billed once; the job completes', async () => {
  const manifest = {
    name: 'stop-drain',
    executor: 'wasm',
    code: { wasm: join(repoRoot, 'src/compute/modules/wasi-log.wasm') },
    entry: '_start',
    inputs: { list: Array.from({ length: TASKS }, (_, i) => `slow: task ${i}`) },
    resources: { cores: 1, memoryMib: 64 },
    verification: { mode: 'off', redundancy: 1 },
    budget: { maxPricePerHour: 5 },
    task: { inputEncoding: 'utf8', timeoutMs: 120_000, expectedMs: 1000, maxAttempts: 2 }
  }
  const api = ApiClient.connect(submitter.dataDir)
  const papi = ApiClient.connect(provider.dataDir)
  const { jobId } = await api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: repoRoot })
  // wait until the provider runs two copies at once
  let running = 0
  for (let i = 0; i < 1200 && running < 2; i++) {
    running = (await papi.call<{ compute?: { running?: number } }>('GET', '/v1/status')).compute?.running ?? 0
    if (running < 2) await sleep(50)
  }
  assert.is(running, 2, 'the provider ran two copies at once')
  const pid = papi.pid
  const stop = await dbcAsync(['--data-dir', provider.dataDir, 'node', 'stop'], { timeoutMs: 90_000 })
  assert.is(stop.code, 0, stop.stderr)
  assert.ok(/^draining: [12] task\(s\) running on the node finish first \(at most 30 s; `dbc node stop --now` stops at once\)\nnode stopped/.test(stop.stdout), `dbc node stop printed ${JSON.stringify(stop.stdout)}`)
  assert.not.ok(processAlive(pid))
  // the job completes (on the submitter's own slot once the provider is gone)
  let status: { status: string, done?: number, failed?: number } = { status: 'running' }
  for (let i = 0; i < 600 && status.status === 'running'; i++) {
    status = await api.call('GET', `/v1/jobs/${jobId}`)
    if (status.status === 'running') await sleep(500)
  }
  assert.is(status.status, 'finished', JSON.stringify(status))
  const lines = taskLines(provider.dataDir, jobId)
  const tasks = lines.filter(l => l.job === jobId && typeof l.outcome === 'string')
  const drainAt = lines.findIndex(l => typeof l.msg === 'string' && l.msg.startsWith('draining: '))
  assert.ok(drainAt >= 0, 'the provider logged its drain')
  const drainedAt = lines.findIndex(l => typeof l.msg === 'string' && /^drained: the [12] task\(s\) running at the stop finished and their results were sent$/.test(l.msg))
  assert.ok(drainedAt > drainAt, JSON.stringify(lines.filter(l => l.job === undefined).map(l => l.msg)))
  const drained = Number(/the (\d) task/.exec(lines[drainedAt].msg as string)?.[1])
  // no copy failed at the stop (before: the two running failed PEER_STOPPED, their lines `billed=`);
  // copies sent during the drain were not started and are refused PEER_STOPPED at its end (lost, not failed)
  assert.equal(tasks.filter(l => l.outcome === 'failed'), [], 'no copy was cut short')
  for (const l of tasks.filter(l => l.outcome === 'refused')) {
    assert.is(l.code, 'PEER_STOPPED')
    assert.is(l.billed, 'not billed (only delivered results are paid)')
  }
  // the copies running at the stop ended ok during the drain
  assert.is(lines.slice(drainAt, drainedAt).filter(l => l.job === jobId && l.outcome === 'ok').length, drained)
  const ok = tasks.filter(l => l.outcome === 'ok')
  // each copy the provider ran is billed once on the submitter's side
  const pay = await api.call<{ payment: { receipts: Array<{ key: string, provider: string }> } }>('GET', `/v1/jobs/${jobId}/payments`)
  const mine = pay.payment.receipts.filter(r => r.provider === provider.peerId).map(r => r.key)
  assert.is(new Set(mine).size, mine.length, 'no copy billed twice')
  assert.is(mine.length, ok.length, `receipts ${JSON.stringify(mine)} for the provider's ${ok.length} ok copies`)
})

test.after(async () => { await sb.cleanup() })
test.run()
