// A compute peer that stops (the daemon's SIGTERM) says so for the work it cuts short and for the
// work that comes after: PEER_STOPPED, which a submitter takes as "not run" (it waits for the
// provider to come back), not as a failure of the task or of the provider. On real daemons a
// provider stopped mid-job answered "EXECUTOR_UNAVAILABLE: the wasm executor is closed" for copies
// still arriving: three in a row and the submitter avoided it for the rest of the job.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ComputePeer } from '../../../src/compute/index.js'
import { encodeTileInput } from '../../../src/compute/mandelbrot.js'

const mandelbrot = new Uint8Array(readFileSync(new URL('../../../src/compute/modules/mandelbrot.wasm', import.meta.url)))

test('a task cut short by stop() and a task sent after it both fail PEER_STOPPED', async () => {
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false })
  await peer.start()
  // a long tile (seconds of CPU): still running when the peer stops
  const long = peer.runTask({ taskId: randomBytes(8), jobId: randomBytes(16), executor: 'wasm', code: mandelbrot, entry: 'run', input: encodeTileInput(-0.2, -0.1, 0.0001, 32, 32, 2_000_000), deadlineMs: 60_000, memoryLimitMib: 64 })
  await new Promise(resolve => setTimeout(resolve, 300))
  await peer.stop()
  const r = await long
  assert.is(r.result.ok, false)
  assert.is(r.result.code, 'PEER_STOPPED', `cut short: ${r.result.error}`)
  const after = await peer.runTask({ taskId: randomBytes(8), jobId: randomBytes(16), executor: 'wasm', code: mandelbrot, entry: 'run', input: encodeTileInput(-0.2, -0.1, 0.0001, 4, 4, 10), deadlineMs: 60_000, memoryLimitMib: 64 }).then(() => 'ran', (err: { code?: string, message: string }) => `${err.code ?? ''}: ${err.message}`)
  assert.match(after, /^PEER_STOPPED: /)
})

test('a drain lets the running task finish ok; a queued task and one sent during it are not started, and fail PEER_STOPPED at stop()', async () => {
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false })
  await peer.start()
  const task = (iterations: number): Parameters<ComputePeer['runTask']>[0] => ({ taskId: randomBytes(8), jobId: randomBytes(16), executor: 'wasm', code: mandelbrot, entry: 'run', input: encodeTileInput(-0.2, -0.1, 0.0001, 16, 16, iterations), deadlineMs: 60_000, memoryLimitMib: 64 })
  const settled = (p: Promise<unknown>): Promise<string> => p.then((r: any) => r.result.ok === true ? 'ok' : `failed ${String(r.result.code)}`, (err: { code?: string }) => `refused ${err.code ?? ''}`)
  const running = settled(peer.runTask(task(1_000_000))) // about a second or more of CPU
  const queued = settled(peer.runTask(task(10))) // waits for the one slot
  await new Promise(resolve => setTimeout(resolve, 200))
  assert.is(peer.executing, 1)
  peer.drain()
  assert.ok(peer.draining)
  const during = settled(peer.runTask(task(10)))
  assert.is(await running, 'ok', 'the task running at the drain finished')
  await new Promise(resolve => setTimeout(resolve, 100))
  // the slot the finished task freed started nothing: the queued task and the new one wait for the stop
  assert.is(peer.executing, 0)
  assert.is(peer.waiting, 2)
  await peer.stop()
  assert.is(await queued, 'refused PEER_STOPPED')
  assert.is(await during, 'refused PEER_STOPPED')
})

test.run()
