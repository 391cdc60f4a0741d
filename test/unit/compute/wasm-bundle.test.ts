// A bundle's tiny tasks run in one go (WasmExecutor.runBundle: one worker message each way, not a
// run() each): the same outputs as run(), each task's own times and failure, the bundle's cut (time,
// output bytes, a drain's stop flag, a task that left the worker big), a watchdog for a task that
// never ends; and ComputePeer.runBundle takes that path for a bundle of one module, stopping it at a drain.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { WasmExecutor } from '../../../src/compute/executors/wasm.js'
import type { BundleTaskResult, ExecutionRequest } from '../../../src/compute/executors/types.js'
import { ComputePeer } from '../../../src/compute/index.js'
import { encodeTileInput } from '../../../src/compute/mandelbrot.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

const mod = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../src/compute/modules/${name}.wasm`, import.meta.url)))
const f64 = (xs: number[]): Uint8Array => new Uint8Array(new Float64Array(xs).buffer)
const square = mod('square')
const base: ExecutionRequest = { taskId: 't', code: square, entry: 'run', input: f64([1]), timeoutMs: 5000, memoryLimitMib: 16, maxOutputBytes: 1 << 20 }
const kinds = (rs: BundleTaskResult[]): string[] => rs.map(r => 'cut' in r ? 'cut' : r.ok ? 'ok' : r.error.code ?? 'error')

test('WasmExecutor.runBundle: the outputs run() gives, each task with its own times', async () => {
  const ex = new WasmExecutor({ workers: 1 })
  try {
    const reqs = Array.from({ length: 6 }, (_, i) => ({ ...base, taskId: `t${i}`, input: f64([i, i + 0.5]) }))
    const rs = await ex.runBundle(reqs, { cutMs: 60_000, cutBytes: 1 << 20 })
    assert.equal(kinds(rs), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'])
    for (const [i, r] of rs.entries()) {
      if (!('ok' in r) || !r.ok) throw new Error('not ok')
      assert.equal(new Uint8Array(r.result.output), new Uint8Array((await ex.run(reqs[i])).output), `task ${i}: the output run() gives`)
      assert.ok(r.startedAt <= r.finishedAt && r.result.cpuMs >= 0)
      if (i > 0) assert.ok(r.startedAt >= (rs[i - 1] as { finishedAt: number }).finishedAt, 'one after another')
    }
  } finally { await ex.close() }
})

test('WasmExecutor.runBundle: the first task always runs; the cut (time, bytes, the stop flag) leaves the rest unstarted', async () => {
  const ex = new WasmExecutor({ workers: 1 })
  try {
    const reqs = Array.from({ length: 4 }, (_, i) => ({ ...base, taskId: `t${i}`, input: f64([i, i, i, i]) }))
    assert.equal(kinds(await ex.runBundle(reqs, { cutMs: 0, cutBytes: 1 << 20 })), ['ok', 'cut', 'cut', 'cut'])
    // the second output reaches twice one's size
    const size = (await ex.run(reqs[0])).output.length
    assert.ok(size > 0)
    assert.equal(kinds(await ex.runBundle(reqs, { cutMs: 60_000, cutBytes: 2 * size })), ['ok', 'ok', 'cut', 'cut'])
    const stopFlag = new Int32Array(new SharedArrayBuffer(4))
    assert.equal(kinds(await ex.runBundle(reqs, { cutMs: 60_000, cutBytes: 1 << 20, stopFlag })), ['ok', 'ok', 'ok', 'ok'])
    Atomics.store(stopFlag, 0, 1)
    assert.equal(kinds(await ex.runBundle(reqs, { cutMs: 60_000, cutBytes: 1 << 20, stopFlag })), ['ok', 'cut', 'cut', 'cut'])
  } finally { await ex.close() }
})

test('WasmExecutor.runBundle: a task that fails fails alone; one that grew its memory ends the bundle and its worker', async () => {
  const ex = new WasmExecutor({ workers: 1 })
  try {
    // a wrong entry is refused before anything runs
    const noEntry = await ex.runBundle([{ ...base, entry: 'nothing' }, { ...base, entry: 'nothing' }], { cutMs: 60_000, cutBytes: 1 << 20 }).then(() => undefined, (e: Error) => e)
    assert.match(noEntry?.message ?? '', /exports no function "nothing"/)
    const bomb = { ...base, code: mod('membomb'), memoryLimitMib: 24, timeoutMs: 30_000 }
    const rs = await ex.runBundle([bomb, { ...bomb, taskId: 'b2' }], { cutMs: 60_000, cutBytes: 1 << 20 })
    assert.equal(kinds(rs), ['TASK_MEMORY_LIMIT', 'cut'], 'the worker left big runs nothing more')
    assert.is(ex.recycled, 1, 'and is replaced')
    assert.equal(kinds(await ex.runBundle([base, base], { cutMs: 60_000, cutBytes: 1 << 20 })), ['ok', 'ok'], 'the pool keeps serving')
  } finally { await ex.close() }
})

test('WasmExecutor.runBundle: a task that never ends is stopped by the watchdog (its cut plus its limit); the pool keeps serving', async () => {
  const ex = new WasmExecutor({ workers: 1 })
  try {
    const loop = { ...base, code: mod('loop'), timeoutMs: 300 }
    const t0 = performance.now()
    const rs = await ex.runBundle([loop, loop, loop], { cutMs: 100, cutBytes: 1 << 20 })
    assert.equal(kinds(rs), ['TASK_TIMEOUT', 'cut', 'cut'], 'the task that ran fails; the others did not start (sent again)')
    const err = rs[0] as { error: Error }
    assert.match(err.error.message, /bundle of 3 tasks .* ran past 400 ms/)
    assert.ok(performance.now() - t0 >= 390, 'not before the cut plus the limit')
    // tasks that ran fine before a task that never ends are not failed with it (review20): sent again
    // one module: tiny tiles, then one inside the set at 2e9 iterations a pixel (minutes)
    const tile = { ...base, code: mod('mandelbrot'), timeoutMs: 300, input: encodeTileInput(-2, -1.25, 0.01, 2, 2, 10) }
    const mixed = await ex.runBundle([tile, tile, { ...tile, taskId: 'looper', input: encodeTileInput(-0.1, 0, 0.0001, 4, 4, 2_000_000_000) }, tile], { cutMs: 100, cutBytes: 1 << 20 })
    assert.equal(kinds(mixed), ['cut', 'cut', 'TASK_TIMEOUT', 'cut'])
    assert.match((mixed[2] as { error: Error }).error.message, /^task looper: it was running when/)
    assert.equal(kinds(await ex.runBundle([base, base], { cutMs: 60_000, cutBytes: 1 << 20 })), ['ok', 'ok'])
    assert.is(ex.workerCount, 1)
  } finally { await ex.close() }
})

test('ComputePeer.runBundle runs a bundle of one module in one go, and a drain that begins meanwhile starts no further task', async () => {
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false })
  await peer.start()
  try {
    const wasm = (peer as unknown as { executors: Map<string, WasmExecutor> }).executors.get('wasm')!
    let runs = 0
    const run = wasm.run.bind(wasm)
    wasm.run = async (...a) => { runs++; return await run(...a) }
    const t = (input: Uint8Array): dbc.task.v1.ITask => ({ taskId: randomBytes(8), jobId: new Uint8Array([1]), executor: 'wasm', code: square, entry: 'run', input })
    const outs = await peer.runBundle(Array.from({ length: 8 }, (_, i) => t(f64([i]))))
    assert.ok(outs.every(o => !('refused' in o) && o.result.ok === true))
    assert.is(runs, 0, 'no run() per task: the bundle went in one go')
    assert.is(peer.tasksRun, 8)
    // heavy tiles (tens of ms each): the drain lands while the bundle runs in the worker
    const heavy = encodeTileInput(-2, -1.25, 2.5 / 128, 128, 128, 3000)
    const mandelbrot = mod('mandelbrot')
    const tiles = Array.from({ length: 12 }, () => ({ ...t(heavy), code: mandelbrot }))
    const drained = peer.runBundle(tiles)
    setTimeout(() => { peer.drain() }, 50)
    const codes = (await drained).map(o => 'refused' in o ? String((o.refused as { code?: string }).code) : 'ran')
    assert.ok((await drained).every(o => 'refused' in o || o.result.ok === true), 'every tile that ran is ok')
    assert.is(codes[0], 'ran')
    assert.ok(codes.includes('LEASE_SLOTS_BUSY'), `the drain stopped the bundle: ${codes.join(' ')}`)
    assert.ok(codes.indexOf('LEASE_SLOTS_BUSY') > codes.lastIndexOf('ran'), 'the tasks that ran came first')
  } finally { await peer.stop() }
})

test.run()
