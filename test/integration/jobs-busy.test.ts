// test-timeout-s: 600
// Job A sometimes never had a copy on each of the two providers: the two providers, identical but
// benchmarked together on a loaded host, scored up to 2x apart, so placement queued both of its
// tiles on the "faster" one's slot (a fair choice for that score; QUEUE_WAIT_RUNS in
// src/core/scheduler/placement.ts narrowed it, a CI run in session 12 still hit it). Job A is now
// one tile in one copy per provider: copies of a task run on distinct providers by rule, not by
// score. If the wait for job A times out, the test prints job A's status and each task's explain.
// Busy providers make a job wait, not fail (issue 15). Real daemons (demo/network.ts): a submitter
// and two providers of one slot each. Job A fills every provider slot with copies of a long Mandelbrot tile; job B (two copies
// a task on distinct providers) is submitted while they run. B must wait, its status saying why
// ("waiting: N providers busy", refusals by code), for longer than the old 10 s give-up, and then
// finish with every square right once A frees the slots. A job whose tasks no provider could ever
// take (more cores than any has) still fails quickly, naming the refusal code.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { encodeTileInput } from '../../src/compute/mandelbrot.js'
import { waitUntil } from '../helpers/wait.js'

type Status = Record<string, any>

async function status (n: LocalNode, jobId: string): Promise<Status> {
  return await n.api.call<Status>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 })
}

const until = async (what: string, limitMs: number, fn: () => Promise<boolean>): Promise<void> => { await waitUntil(what, fn, { ms: limitMs, everyMs: 200 }) }

test('a job submitted while every provider is busy waits for slots, says why, then finishes', async () => {
  const net = new LocalNetwork()
  try {
    // generous start limits: a loaded 2-core machine starts a daemon in minutes, not seconds
    const sub = await net.start({ name: 'sub', location: '35.68,139.69', extra: ['--no-connection-monitor'] }, [], { timeoutMs: 240_000 })
    // one CPU slot per provider (provider.slots.cpu): job A's two copies of one long tile make every provider busy
    const config = join(net.root, 'provider.json')
    writeFileSync(config, JSON.stringify({ provider: { slots: { cpu: 1 } } }))
    const providers = await Promise.all([0, 1].map(async i => await net.start({ name: `p${i}`, location: '35.68,139.69', extra: ['--no-connection-monitor', '--config', config] }, [sub.addrs[0]], { timeoutMs: 240_000 })))
    await until('providers connected', 120_000, async () => {
      const { peers } = await sub.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
      return providers.every(p => peers.some(x => x.peerId === p.peerId))
    })
    // both providers' capability records found: otherwise job A may see one offer and queue its
    // second tile behind the first on one provider, and "every slot busy" never happens
    await until('both providers found', 180_000, async () => {
      const r = await sub.api.call<{ results: Array<{ peerId: string }> }>('GET', '/v1/capabilities?capability=cpu&fresh=1', undefined, { timeoutMs: 60_000 }).catch(() => ({ results: [] }))
      return providers.every(p => r.results.some(x => x.peerId === p.peerId))
    })
    const slots = providers.length
    const dir = join(net.root, 'jobs')
    mkdirSync(dir, { recursive: true })
    // job A: one long tile (~8 s of CPU on an idle core, all points inside the set) in one copy per
    // provider (redundancy = providers: copies of a task run on distinct providers). Two tiles of one
    // copy each did not always fill both: identical providers benchmarked together on a loaded host
    // score up to 2x apart, and placement rightly queues both tiles on the "faster" one (session 13)
    writeFileSync(join(dir, 'tiles.bin'), encodeTileInput(-0.2, -0.1, 0.0001, 32, 32, 2_000_000))
    const a = await sub.api.call<{ jobId: string }>('POST', '/v1/jobs', {
      manifest: { name: 'long-tiles', executor: 'wasm', code: { wasm: join(repoRoot, 'src/compute/modules/mandelbrot.wasm') }, entry: 'run', inputs: { files: { path: 'tiles.bin', chunkBytes: 36 } }, verification: { mode: 'off', redundancy: slots }, task: { timeoutMs: 300_000, expectedMs: 10_000 } },
      baseDir: dir
    }, { timeoutMs: 30_000 })
    const tA = Date.now()
    let aMax = 0
    try {
      await until('job A running on every slot', 240_000, async () => {
        const s = await status(sub, a.jobId)
        aMax = Math.max(aMax, s.running ?? 0)
        return s.running >= slots
      })
    } catch (err) {
      // diagnostics for next time: where each tile ran, what each copy became, why one waits
      console.log(`job A never had ${slots} copies running at once (most seen: ${aMax}):`, JSON.stringify(await status(sub, a.jobId)))
      console.log(`job A task 0:`, JSON.stringify(await sub.api.call<Status>('GET', `/v1/jobs/${a.jobId}/explain?task=0`, undefined, { timeoutMs: 30_000 }).catch(e => String(e))))
      throw err
    }
    console.log(`job A ran on every slot ${Date.now() - tA} ms after it was submitted`)

    // job B: squares, two agreeing copies a task on distinct providers
    const tasks = 6
    const data = Buffer.alloc(8 * tasks)
    for (let i = 0; i < tasks; i++) data.writeDoubleLE(i + 7, i * 8)
    writeFileSync(join(dir, 'squares.bin'), data)
    const t0 = Date.now()
    const b = await sub.api.call<{ jobId: string }>('POST', '/v1/jobs', {
      manifest: { name: 'squares', executor: 'wasm', code: { wasm: join(repoRoot, 'src/compute/modules/square.wasm') }, entry: 'run', inputs: { files: { path: 'squares.bin', chunkBytes: 8 } }, verification: { mode: 'off', redundancy: 2 }, task: { timeoutMs: 20_000, expectedMs: 5, waitS: 600 } },
      baseDir: dir
    }, { timeoutMs: 30_000 })
    let waiting: Status | undefined
    // (on a loaded host the first answers may be REQUEST_EXPIRED, also "not now": wait for a BUSY one)
    let last: Status | undefined
    try {
      await until('job B to say it waits for busy providers', 120_000, async () => {
        const s = await status(sub, b.jobId)
        last = s
        if (typeof s.waiting === 'string' && /^waiting: \d+ providers? busy/.test(s.waiting) && (s.refusals?.BUSY ?? 0) > 0) waiting = s
        return waiting !== undefined
      })
    } catch (err) {
      console.log('job B:', JSON.stringify(last))
      throw err
    }
    assert.ok((waiting!.refusals?.BUSY ?? 0) > 0, `refusals: ${JSON.stringify(waiting!.refusals)}`)
    assert.is(waiting!.failed, 0)
    assert.is(waiting!.done, 0)
    // still waiting (nothing failed) past the old 10 s give-up, while A holds the slots
    await until('12 s of waiting', 60_000, async () => Date.now() - t0 > 12_000)
    const mid = await status(sub, b.jobId)
    const aMid = await status(sub, a.jobId)
    console.log(`after ${Date.now() - t0} ms: job A ${JSON.stringify({ status: aMid.status, running: aMid.running, done: aMid.done })}, job B ${JSON.stringify({ status: mid.status, waiting: mid.waiting, refusals: mid.refusals, failed: mid.failed })}`)
    if (aMid.status === 'running' && aMid.done === 0) {
      assert.is(mid.status, 'running', `job B: ${JSON.stringify(mid)}`)
      assert.is(mid.failed, 0, `job B failed tasks while waiting: ${JSON.stringify(mid.summary?.failures ?? mid)}`)
    }
    const explain = await sub.api.call<Status>('GET', `/v1/jobs/${b.jobId}/explain?task=0`, undefined, { timeoutMs: 30_000 })
    if (mid.done === 0 && mid.running === 0) assert.match(String(explain.task?.waiting ?? ''), /busy|waiting/)

    try {
      await until('job B to end', 900_000, async () => (await status(sub, b.jobId)).status !== 'running')
    } catch (err) {
      console.log('job A:', JSON.stringify(await status(sub, a.jobId)))
      console.log('job B:', JSON.stringify(await status(sub, b.jobId)), JSON.stringify(await sub.api.call<Status>('GET', `/v1/jobs/${b.jobId}/explain?task=0`)))
      throw err
    }
    const end = await status(sub, b.jobId)
    if (end.status !== 'finished') console.log('job B:', JSON.stringify(end), JSON.stringify(await sub.api.call<Status>('GET', `/v1/jobs/${b.jobId}/explain?task=0`)))
    assert.is(end.status, 'finished')
    assert.ok((end.summary?.refusals?.BUSY ?? 0) > 0, 'the summary keeps the refusals')
    const { results } = await sub.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${b.jobId}/results`, undefined, { timeoutMs: 30_000 })
    assert.is(results.length, tasks)
    assert.equal(results.map(r => r.index).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5])
    for (const r of results) assert.is(Buffer.from(r.output, 'base64').readDoubleLE(0), (r.index + 7) ** 2)
    await until('job A to end', 900_000, async () => (await status(sub, a.jobId)).status !== 'running')
    const aEnd = await status(sub, a.jobId)
    if (aEnd.status !== 'finished') console.log('job A:', JSON.stringify(aEnd))
    assert.is(aEnd.status, 'finished')

    // no provider could ever run it (more cores than any has): fails within seconds, naming the code
    const c = await sub.api.call<{ jobId: string }>('POST', '/v1/jobs', {
      manifest: { name: 'too-big', executor: 'wasm', code: { wasm: join(repoRoot, 'src/compute/modules/square.wasm') }, entry: 'run', inputs: { files: { path: 'squares.bin', chunkBytes: 8 } }, resources: { cores: 512 }, verification: { mode: 'off' }, task: { timeoutMs: 20_000, expectedMs: 5 } },
      baseDir: dir
    }, { timeoutMs: 30_000 })
    await until('job C to fail', 120_000, async () => (await status(sub, c.jobId)).status !== 'running')
    const cs = await status(sub, c.jobId)
    assert.is(cs.status, 'failed')
    assert.ok((cs.refusals?.NO_CAPACITY ?? 0) > 0, `refusals: ${JSON.stringify(cs.refusals)}`)
    assert.not.ok('BUSY' in (cs.refusals ?? {}))
  } catch (err) {
    for (const n of net.nodes) console.log(`--- ${n.spec.name} log tail ---\n${net.logOf(n).slice(-3000)}`)
    throw err
  } finally {
    await net.stop()
  }
})

test.run()
