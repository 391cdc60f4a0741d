// `npm run bench -- executor`: what running a task on the local compute peer costs.
//  - overhead per tiny wasm task, submit → result (slot, worker round trip, metering, signed
//    receipt), against a direct in-process call of the same wasm function (baseline);
//  - tasks per second with all slots busy, against the same direct calls on one thread.
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { metric, summarize, type BenchModule } from './lib.js'
import { ComputePeer } from '../src/compute/index.js'
import { WasmExecutor } from '../src/compute/executors/wasm.js'
import { createRng } from '../src/core/rng.js'

const code = new Uint8Array(readFileSync(new URL('../src/compute/modules/square.wasm', import.meta.url)))
const input = new Uint8Array(new Float64Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer)

interface WasmInstanceLike { exports: Record<string, unknown> }
interface WasmGlobal { Module: new (b: Uint8Array) => object, Instance: new (m: object, i: object) => WasmInstanceLike }
const WA = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly

/** The baseline: the same exported function called in this thread, input copied in and out. */
function directCaller (): () => Uint8Array {
  const module = new WA.Module(code)
  return () => {
    // a fresh instance per call, as the executor does (tasks never share state)
    const inst = new WA.Instance(module, { env: { abort: () => { throw new Error('abort') } } })
    const mem = inst.exports.memory as { buffer: ArrayBuffer }
    const ptr = (inst.exports.alloc as (n: number) => number)(input.length)
    new Uint8Array(mem.buffer, ptr, input.length).set(input)
    const out = (inst.exports.run as (p: number, n: number) => number)(ptr, input.length)
    const len = new DataView(mem.buffer).getUint32(out, true)
    return new Uint8Array(mem.buffer.slice(out + 4, out + 4 + len))
  }
}

async function timeEach (n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn()
    out.push(performance.now() - t0)
  }
  return out
}

export const run: BenchModule['run'] = async ({ quick }) => {
  const n = quick ? 500 : 3000
  const direct = directCaller()
  for (let i = 0; i < 200; i++) direct()
  const directMs = summarize(await timeEach(n, direct))

  const slots = Math.max(2, cpus().length)
  const peer = new ComputePeer({ secretKey: createRng(1).bytes(new Uint8Array(32)), cpuSlots: slots, benchmark: false, nvidiaSmi: '/nonexistent/nvidia-smi' })
  await peer.start()
  let id = 0
  const task = (): { taskId: Uint8Array, code: Uint8Array, entry: string, input: Uint8Array, deadlineMs: number, memoryLimitMib: number } => {
    id++
    return { taskId: new Uint8Array([id & 255, (id >> 8) & 255, (id >> 16) & 255]), code, entry: 'run', input, deadlineMs: 5000, memoryLimitMib: 16 }
  }
  for (let i = 0; i < 200; i++) await peer.runTask(task()) // warm workers, module cache, JIT
  const peerMs = summarize(await timeEach(n, async () => await peer.runTask(task())))

  // The executor alone (no slots, metering or receipt), to show where the time goes.
  const ex = new WasmExecutor({ workers: 1 })
  const req = { taskId: 'x', code, entry: 'run', input, timeoutMs: 5000, memoryLimitMib: 16, maxOutputBytes: 1 << 20 }
  for (let i = 0; i < 200; i++) await ex.run(req)
  const execMs = summarize(await timeEach(n, async () => await ex.run(req)))
  await ex.close()

  // Throughput with every slot busy: keep 4 tasks per slot in flight.
  const total = quick ? 2000 : 10000
  let started = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: slots * 4 }, async () => {
    while (started < total) { started++; await peer.runTask(task()) }
  }))
  const tasksPerS = total / ((performance.now() - t0) / 1000)
  const d0 = performance.now()
  for (let i = 0; i < total; i++) direct()
  const directPerS = total / ((performance.now() - d0) / 1000)
  const stats = peer.stats()
  await peer.stop()

  const overhead = peerMs.p50 - directMs.p50
  return {
    metrics: {
      task_p50_ms: metric(peerMs.p50, 'ms', directMs.p50),
      task_p99_ms: metric(peerMs.p99, 'ms', directMs.p99),
      overhead_p50_ms: metric(overhead, 'ms', undefined, '< 1 ms per tiny wasm task (warm cache)', overhead < 1),
      executor_only_p50_ms: metric(execMs.p50, 'ms', directMs.p50),
      tasks_per_s_all_slots: metric(tasksPerS, 'tasks/s', directPerS),
      slots: metric(slots, 'slots')
    },
    notes: [
      `baseline: the same wasm function called in-process (fresh instance, input copied in and out), p50 ${directMs.p50.toFixed(4)} ms`,
      'task = ComputePeer.runTask: slot admission, worker round trip, CPU-time metering, sha256 of the output, Ed25519-signed receipt',
      `executor_only = WasmExecutor.run alone (1 worker): the worker round trip without slots and receipt`,
      `throughput: ${total} tasks, ${slots * 4} in flight over ${slots} slots; baseline: the same number of direct calls on one thread`,
      `load average at the end: ${loadavg()[0].toFixed(1)} on ${cpus().length} cores (p99 suffers first when the machine is shared)`,
      `module cache: ${stats.moduleCache.hits} hits, ${stats.moduleCache.misses} miss(es); workers: ${slots}`
    ]
  }
}
