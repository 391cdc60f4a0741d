// Grid jobs over provider processes: each provider is its own OS process (ComputePeer with
// the real wasm executor), reached over IPC; kill -9 of 30% of them mid-job.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { JobRunner, ProcessTransport, type ProviderProcessSpec } from '../../src/jobs/index.js'
import { toHex } from '../../src/core/identity/index.js'
import { key, manifest } from './jobs-helpers.js'

const owner = key(1)
const square = new Uint8Array(readFileSync(new URL('../../src/compute/modules/square.wasm', import.meta.url)))
const specs = (n: number): ProviderProcessSpec[] => Array.from({ length: n }, (_, i) => ({ kind: 'compute', secretKey: toHex(key(120 + i).secretKey), slots: 2, heartbeatMs: 100 }))
const f64 = (b: Uint8Array): number => new Float64Array(b.slice().buffer)[0]
// square.wasm returns the sum of squares of its float64 inputs.
const job = (id: string, n: number) => manifest({ executor: 'wasm', code: { wasm: 'square.wasm' }, entry: 'run', inputs: { range: { from: 0, to: n - 1 } }, task: { timeoutMs: 10_000, expectedMs: 1, inputEncoding: 'f64' } })

let tr: ProcessTransport | undefined

test('1,000 wasm tasks over 8 ComputePeer processes: every result correct; then kill -9 of 3 of them mid-job', async () => {
  tr = await ProcessTransport.start(specs(10), { sender: owner.peerId })
  const r1 = new JobRunner({ jobId: 'f1'.repeat(32), manifest: job('a', 1000), holder: owner, transport: tr, code: square, maxLeases: 8 })
  const s1 = await r1.run()
  assert.is(s1.status, 'finished')
  assert.is(s1.done, 1000)
  assert.is(s1.providersUsed, 8)
  for (const x of r1.results()) assert.is(f64(x.output), x.index * x.index, `task ${x.index}`)

  const victims = tr.ids().slice(0, 3)
  let accepted = 0
  const r2 = new JobRunner({
    jobId: 'f2'.repeat(32), manifest: job('b', 1000), holder: owner, transport: tr, code: square, leaseTimeoutMs: 500,
    onEvent: e => { if (e.type === 'accepted' && ++accepted === 300) for (const v of victims) tr!.kill(v) }
  })
  const s2 = await r2.run()
  assert.is(s2.status, 'finished')
  assert.is(s2.done, 1000)
  assert.ok(s2.providersUsed === 10)
  assert.ok(s2.retries > 0, 'copies on the killed processes were re-run')
  for (const x of r2.results()) assert.is(f64(x.output), x.index * x.index, `task ${x.index}`)
  assert.is(s2.billedCopies, 1000 + s2.checkedTasks, 'one billed copy per task, two for a spot-checked one')
})

test.after(() => { tr?.stop() })
test.run()
