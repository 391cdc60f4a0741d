// A compute peer end to end: real wasm tasks through slots and executors, checked outputs and
// receipts, failures that leave the peer serving, offers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { dbc } from '../../src/wire/gen/wire.js'
import { ComputePeer, type SlotEvent } from '../../src/compute/index.js'
import { verifyReceipt } from '../../src/core/settlement/receipt.js'
import { verifyOffer } from '../../src/core/compute/offer.js'
import { chargeUnits, PRICING_VERSION } from '../../src/core/compute/pricing.js'
import { createRng } from '../../src/core/rng.js'

const rng = createRng(42)
const secretKey = rng.bytes(new Uint8Array(32))
const consumer = new Uint8Array([0xc0, 0x45])
const mod = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../src/compute/modules/${name}.wasm`, import.meta.url)))
const f64 = (xs: number[]): Uint8Array => new Uint8Array(new Float64Array(xs).buffer)
const sumOf = (out: Uint8Array): number => new Float64Array(out.slice().buffer)[0]

const peer = new ComputePeer({
  secretKey,
  cpuSlots: 2,
  memoryMib: 1024,
  declaredGpus: '1xRTX4090:24GiB',
  policy: { priceCpuHour: 0.05, priceGpuHour: { RTX4090: 0.8 }, maxInputBytes: 4096, maxTaskMs: 120_000, executors: ['wasm', 'docker'] },
  payoutAddress: '0x00000000000000000000000000000000000000aa',
  nvidiaSmi: '/nonexistent/nvidia-smi'
})
const events: SlotEvent[] = []
peer.events.on('event', e => events.push(e))
let n = 0
const task = (over: dbc.task.v1.ITask = {}): dbc.task.v1.ITask => ({ taskId: new Uint8Array([++n]), jobId: new Uint8Array([7]), executor: 'wasm', code: mod('square'), entry: 'run', input: f64([3, 4]), deadlineMs: 60_000, memoryLimitMib: 32, ...over })
// a generous wall-time limit: a loaded 2-core box may take seconds to start a worker; tests that
// are about the limit set their own

async function expectServing (): Promise<void> {
  const { result } = await peer.runTask(task({ input: f64([5]) }))
  assert.ok(result.ok, result.error)
  assert.is(sumOf(result.output), 25)
}

test.before(async () => { await peer.start() })

test('a task\'s pricing version names its receipt\'s rounding: version 1 bills a square that measured any CPU time as at least 1 ms; a task without one (an older submitter) gets version 0', async () => {
  const prices = { priceGpuHour: 0, priceCpuHour: 0.05 }
  const oneMs = chargeUnits({ gpuSeconds: 0, cpuMs: 1 }, prices)
  const v1 = verifyReceipt((await peer.runTask(task({ pricingVersion: PRICING_VERSION }), { consumer })).receipt, peer.peerId)
  assert.ok(v1.ok, v1.ok ? '' : v1.reason)
  if (!v1.ok) return
  assert.is(v1.receipt.pricingVersion, 1)
  // a thread's CPU time is tick-based on many kernels (here: 1,974 of 2,000 sub-ms wasm runs read 0):
  // a square may measure 0 and pay 0 under either version; one that measured any time pays >= 1 ms
  // (the rule itself: test/unit/core/compute/pricing-version)
  if (v1.receipt.cpuMs > 0) assert.ok(BigInt(v1.receipt.amount) >= oneMs, `billed ${v1.receipt.amount} for ${v1.receipt.cpuMs} ms`)
  assert.is(v1.receipt.amount, chargeUnits({ gpuSeconds: 0, cpuMs: v1.receipt.cpuMs, pricingVersion: 1 }, prices).toString())
  const v0 = verifyReceipt((await peer.runTask(task(), { consumer })).receipt, peer.peerId)
  assert.ok(v0.ok && v0.receipt.pricingVersion === 0)
  assert.is(v0.ok && v0.receipt.amount, v0.ok && chargeUnits({ gpuSeconds: 0, cpuMs: v0.receipt.cpuMs }, prices).toString())
  // a submitter asking a version above this peer's gets this peer's
  const v9 = verifyReceipt((await peer.runTask(task({ pricingVersion: 9 }), { consumer })).receipt, peer.peerId)
  assert.ok(v9.ok && v9.receipt.pricingVersion === PRICING_VERSION)
})

test('capabilities: declared GPU, benchmark scores, docker left out with a reason', () => {
  const c = peer.capabilities()
  assert.equal(c.gpus, [{ model: 'RTX4090', count: 1, memoryMib: 24576, declared: true }])
  assert.ok(c.cpu.score > 0 && c.gpuScores.RTX4090 > 0)
  assert.equal(c.executors, ['wasm'])
  // no engine here, or one (scripts/setup-podman.sh) with no images listed for this peer
  assert.match(c.unavailable.docker ?? '', /no Docker Engine socket|lists no images/)
  assert.match(c.gpuProbeError ?? '', /not found/)
  assert.is(c.priceGpuHour, 0.8)
})

test('a wasm task returns its output and a receipt that verifies against the provider', async () => {
  const t = task()
  const { result, receipt } = await peer.runTask(t, { consumer })
  assert.ok(result.ok, result.error)
  assert.is(sumOf(result.output), 25)
  assert.equal([...result.outputHash], [...createHash('sha256').update(result.output).digest()])
  const check = verifyReceipt(receipt, peer.peerId)
  assert.ok(check.ok, check.ok ? '' : check.reason)
  const r = check.ok ? check.receipt : undefined
  if (r === undefined) return
  assert.equal([...r.taskId], [...(t.taskId ?? [])])
  assert.equal([...r.consumer], [...consumer])
  assert.equal([...r.outputHash], [...result.outputHash])
  assert.is(r.bytesIn, 16 + (t.code?.length ?? 0))
  assert.is(r.bytesOut, 8)
  assert.is(r.gpuSeconds, 0)
  assert.ok(r.wallMs > 0 && r.cpuMs >= 0 && r.finishedAt >= r.startedAt)
  assert.is(r.priceCpuHour, 0.05)
  assert.is(r.amount, chargeUnits({ gpuSeconds: 0, cpuMs: r.cpuMs }, { priceGpuHour: 0, priceCpuHour: 0.05 }).toString())
  assert.is(r.payoutAddress, '0x00000000000000000000000000000000000000aa')
  // the result carries the same receipt, and a tampered copy fails
  assert.equal(result.receipt, receipt)
  const bytes = Uint8Array.from(receipt.receipt)
  bytes[bytes.length - 3] ^= 0x20
  assert.not.ok(verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: bytes, signature: receipt.signature }), peer.peerId).ok)
})

test('a wasm task granted a GPU slot holds no GPU and is billed no GPU-seconds (wasm never uses one)', async () => {
  const mandel = new DataView(new ArrayBuffer(36))
  mandel.setFloat64(0, -2, true); mandel.setFloat64(8, -1.25, true); mandel.setFloat64(16, 0.01, true)
  mandel.setUint32(24, 128, true); mandel.setUint32(28, 128, true); mandel.setUint32(32, 300, true)
  const progress: number[] = []
  const { result, receipt } = await peer.runTask(task({ code: mod('mandelbrot'), input: new Uint8Array(mandel.buffer) }), { resources: { gpuCount: 1, gpuModel: 'RTX4090' }, onProgress: f => progress.push(f) })
  assert.ok(result.ok, result.error)
  assert.is(result.output.length, 128 * 128 * 4)
  const check = verifyReceipt(receipt)
  assert.ok(check.ok)
  if (!check.ok) return
  // GPU billing of an executor that uses the GPU: test/unit/compute/gpu-truth.test.ts
  assert.is(check.receipt.gpuSeconds, 0)
  assert.is(check.receipt.priceGpuHour, 0)
  assert.ok(progress.length > 0)
  assert.ok(events.some(e => e.type === 'progress'))
})

test('an infinite loop is killed at its limit, its slot is freed, others run meanwhile', async () => {
  const loop = peer.runTask(task({ code: mod('loop'), deadlineMs: 400 }))
  await expectServing() // the other slot keeps working while the loop spins
  const { result, receipt } = await loop
  assert.not.ok(result.ok)
  assert.match(result.error, /^TASK_TIMEOUT: .*wall-time limit of 400 ms/)
  assert.is(peer.stats().running, 0)
  assert.ok(verifyReceipt(receipt).ok) // time used is still receipted
  await expectServing()
})

test('a memory bomb hits its cap', async () => {
  const { result } = await peer.runTask(task({ code: mod('membomb'), memoryLimitMib: 48 }))
  assert.not.ok(result.ok)
  assert.match(result.error, /^TASK_MEMORY_LIMIT: .*memory cap of 48 MiB/)
  await expectServing()
})

test('malformed module, wrong entry, oversized input: clear errors, the peer keeps serving', async () => {
  const bad = await peer.runTask(task({ code: new TextEncoder().encode('#!/bin/sh\necho not wasm') }))
  assert.match(bad.result.error, /^TASK_BAD_MODULE: .*not a WebAssembly module/)
  await expectServing()
  const entry = await peer.runTask(task({ entry: 'main' }))
  assert.match(entry.result.error, /^TASK_NO_ENTRY: .*no function "main"/)
  await expectServing()
  try {
    await peer.runTask(task({ input: new Uint8Array(5000) }))
    assert.unreachable('oversized input must be refused')
  } catch (err) {
    assert.is((err as { code: string }).code, 'TASK_INPUT_TOO_LARGE')
    assert.match((err as Error).message, /5000 bytes is above this provider's limit of 4096 bytes/)
  }
  await expectServing()
  assert.is(peer.stats().running, 0)
})

test('busy slots queue the next task; a running task can be cancelled', async () => {
  const aId = new Uint8Array([201])
  const a = peer.runTask(task({ taskId: aId, code: mod('loop'), deadlineMs: 60_000 }))
  const bId = new Uint8Array([200])
  const b = peer.runTask(task({ taskId: bId, code: mod('loop'), deadlineMs: 60_000 }))
  await new Promise(resolve => setTimeout(resolve, 50))
  const queuedBefore = events.filter(e => e.type === 'queued').length
  const c = peer.runTask(task({ input: f64([6]) }))
  await new Promise(resolve => setTimeout(resolve, 20))
  assert.is(events.filter(e => e.type === 'queued').length, queuedBefore + 1)
  assert.is(peer.stats().queued, 1)
  assert.ok(peer.cancel(bId))
  const rb = await b
  assert.match(rb.result.error, /^TASK_CANCELLED/)
  const rc = await c
  assert.is(sumOf(rc.result.output), 36)
  assert.ok(peer.cancel(aId))
  assert.not.ok(peer.cancel(new Uint8Array([99, 99])))
  const ra = await a
  assert.match(ra.result.error, /^TASK_CANCELLED/)
  assert.is(peer.stats().running, 0)
})

test('offers: signed, expiring, with free slots; refusals say why', () => {
  const now = Date.now()
  const offer = peer.offer({ jobId: new Uint8Array([7]), slots: 10, executor: 'wasm', resources: { cpuCores: 1, memoryMib: 256 } }, { now })
  assert.is(offer.refusal, '')
  assert.is(offer.slots, 2)
  assert.is(offer.priceCpuHour, 0.05)
  assert.ok(offer.expiresAt > now)
  assert.equal(verifyOffer(offer, now, peer.peerId), { ok: true })
  const gpu = peer.offer({ jobId: new Uint8Array([7]), slots: 4, resources: { gpuModel: 'RTX4090', gpuCount: 1 } }, { now })
  assert.is(gpu.slots, 1)
  assert.is(gpu.priceGpuHour, 0.8)
  const docker = peer.offer({ jobId: new Uint8Array([8]), executor: 'docker' }, { now })
  assert.match(docker.refusal, /"docker" is not available on this machine/)
  assert.ok(verifyOffer(docker, now).ok)
  const proc = peer.offer({ jobId: new Uint8Array([8]), executor: 'process' }, { now })
  assert.match(proc.refusal, /"process" is not enabled/)
})

test('the process executor is refused unless enabled', async () => {
  try {
    await peer.runTask(task({ executor: 'process', entry: 'env', code: new Uint8Array(0) }))
    assert.unreachable()
  } catch (err) {
    assert.is((err as { code: string }).code, 'EXECUTOR_DISABLED')
  }
})

test('a bad --gpus flag is a config error naming the part', () => {
  try {
    void new ComputePeer({ secretKey, declaredGpus: '2xRTX4090:24GiB,3xQQ' })
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).name, 'ConfigError')
    assert.match((err as Error).message, /"3xQQ"/)
  }
})

test.after(async () => { await peer.stop() })
test.run()
