// test-timeout-s: 600
// TaskBundles end to end with real daemons (demo/network.ts): a submitter and two providers, a job
// of tiny wasm tasks (square.wasm, expectedMs 1) whose copies leave several to a lease-stream frame
// (the providers offer bundle_max for such tasks; the job summary's `bundles` counts the copies
// and frames, `dbc job status` prints it), every result right and every copy billed once (the
// providers' payment ledgers count as many delivered tasks as the submitter billed); and a job
// whose tasks are expected to take long uses no bundles.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { waitUntil } from '../helpers/wait.js'
import { dbcAsync } from '../helpers/cli.js'

type Status = Record<string, any>

async function runJob (sub: LocalNode, dir: string, name: string, tasks: number, expectedMs: number): Promise<Status> {
  const data = Buffer.alloc(8 * tasks)
  for (let i = 0; i < tasks; i++) data.writeDoubleLE(i + 3, i * 8)
  writeFileSync(join(dir, `${name}.bin`), data)
  const { jobId } = await sub.api.call<{ jobId: string }>('POST', '/v1/jobs', {
    manifest: { name, executor: 'wasm', code: { wasm: join(repoRoot, 'src/compute/modules/square.wasm') }, entry: 'run', inputs: { files: { path: `${name}.bin`, chunkBytes: 8 } }, verification: { mode: 'off' }, task: { timeoutMs: 60_000, expectedMs } },
    baseDir: dir
  }, { timeoutMs: 30_000 })
  let s: Status = {}
  await waitUntil(`job ${name} to end`, async () => { s = await sub.api.call<Status>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 }); return s.status !== 'running' }, { ms: 300_000, everyMs: 250 })
  assert.is(s.status, 'finished', JSON.stringify(s.summary?.failures?.slice(0, 3)))
  const { results } = await sub.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${jobId}/results`, undefined, { timeoutMs: 30_000 })
  assert.is(results.length, tasks)
  for (const r of results) assert.is(Buffer.from(r.output, 'base64').readDoubleLE(0), (r.index + 3) ** 2, `task ${r.index}`)
  return { ...s, jobId }
}

/** Tasks the providers' payment gates counted delivered for a job (their ledgers, by job id). */
async function delivered (providers: LocalNode[], jobId: string): Promise<number> {
  const st = await Promise.all(providers.map(async p => await p.api.call<{ compute?: { payments?: Array<{ jobId?: string, tasks: number }> } }>('GET', '/v1/status', undefined, { timeoutMs: 30_000 })))
  return st.flatMap(s => s.compute?.payments ?? []).filter(r => r.jobId === jobId).reduce((a, r) => a + r.tasks, 0)
}

test('tiny tasks go in TaskBundles between daemons, each result right and billed once; long ones do not', async () => {
  const net = new LocalNetwork()
  try {
    const sub = await net.start({ name: 'sub', location: '52.52,13.40', extra: ['--no-connection-monitor'] }, [], { timeoutMs: 240_000 })
    const providers = await Promise.all([0, 1].map(async i => await net.start({ name: `p${i}`, location: '52.52,13.40', extra: ['--no-connection-monitor'] }, [sub.addrs[0]], { timeoutMs: 240_000 })))
    await waitUntil('providers connected', async () => {
      const { peers } = await sub.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
      return providers.every(p => peers.some(x => x.peerId === p.peerId))
    }, { ms: 120_000, everyMs: 200 })
    const dir = join(net.root, 'jobs')
    mkdirSync(dir, { recursive: true })

    const tiny = await runJob(sub, dir, 'tiny', 400, 1)
    const b = tiny.summary?.bundles
    assert.ok(b !== undefined && b.copies > 0, `no copy left in a bundle: ${JSON.stringify(tiny.summary)}`)
    assert.ok(b.frames < b.copies, `${JSON.stringify(b)}: several copies to a frame`)
    assert.ok(b.copies <= tiny.summary.copies)
    // each copy billed once: the tasks done, and as many as the providers delivered for the job
    assert.is(tiny.summary.billedCopies, 400)
    await waitUntil('the providers\' ledgers to count the job', async () => await delivered(providers, tiny.jobId) >= 400, { ms: 30_000, everyMs: 250 })
    assert.is(await delivered(providers, tiny.jobId), 400)
    // what a user sees: `dbc job status` has a row for it
    const shown = await dbcAsync(['--data-dir', sub.dataDir, 'job', 'status', tiny.jobId], { timeoutMs: 120_000 })
    assert.match(shown.stdout, new RegExp(`bundled\\s+${b.copies as number} copies in ${b.frames as number} frames`), shown.stdout + shown.stderr)
    console.log(`tiny job: ${b.copies} of ${tiny.summary.copies} copies in ${b.frames} TaskBundle frames`)

    const long = await runJob(sub, dir, 'long', 6, 5000)
    assert.is(long.summary?.bundles, undefined, `a job of long tasks used bundles: ${JSON.stringify(long.summary?.bundles)}`)
    assert.is(long.summary.billedCopies, 6)
  } finally {
    await net.stop()
  }
})

test.run()
