import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SlotManager, type SlotEvent } from '../../../src/compute/slots.js'

const capacity = { cpuSlots: 2, memoryMib: 1000, gpus: [{ index: 0, model: 'RTX4090', memoryMib: 24576 }] }

async function rejection (p: Promise<unknown>): Promise<Error & { code: string }> {
  try { await p } catch (err) { return err as Error & { code: string } }
  throw new Error('expected a rejection')
}

test('admits up to capacity, queues the rest in order, starts them as slots free', async () => {
  const s = new SlotManager({ capacity, maxQueue: 2 })
  const events: SlotEvent[] = []
  s.events.on('event', e => events.push(e))
  await s.acquire('a', {})
  await s.acquire('b', {})
  const started: string[] = []
  const c = s.acquire('c', {}).then(() => started.push('c'))
  const d = s.acquire('d', {}).then(() => started.push('d'))
  assert.is(s.queued, 2)
  const full = await rejection(s.acquire('e', {}))
  assert.is(full.code, 'SLOT_QUEUE_FULL')
  assert.match(full.message, /queue is full \(2 tasks waiting\)/)
  s.release('a')
  await c
  assert.equal(started, ['c'])
  s.release('b')
  await d
  assert.equal(started, ['c', 'd'])
  assert.equal(events.map(e => `${e.type}:${e.taskId}`), ['started:a', 'started:b', 'queued:c', 'queued:d', 'refused:e', 'finished:a', 'started:c', 'finished:b', 'started:d'])
})

test('refuses what can never fit, with the reason', async () => {
  const s = new SlotManager({ capacity })
  const e = await rejection(s.acquire('big', { gpus: 2 }))
  assert.is(e.code, 'SLOT_NEVER_FITS')
  assert.match(e.message, /needs 2 GPU\(s\), this peer has 1 matching/)
  assert.match((await rejection(s.acquire('mem', { memoryMib: 5000 }))).message, /5000 MiB/)
})

test('a queued task can be cancelled and never starts', async () => {
  const s = new SlotManager({ capacity: { ...capacity, cpuSlots: 1 } })
  await s.acquire('a', {})
  const ctrl = new AbortController()
  const waiting = rejection(s.acquire('b', {}, { signal: ctrl.signal }))
  ctrl.abort()
  const e = await waiting
  assert.is(e.code, 'TASK_CANCELLED')
  assert.is(s.queued, 0)
  s.release('a')
  assert.is(s.running, 0)
  await s.acquire('c', {})
  assert.is(s.running, 1)
})

test('GPU tasks wait for the GPU while CPU tasks pass', async () => {
  const s = new SlotManager({ capacity })
  await s.acquire('g1', { gpus: 1 })
  let g2started = false
  const g2 = s.acquire('g2', { gpus: 1 }).then(() => { g2started = true })
  await s.acquire('cpu', {}) // starts at once on the free CPU slot
  assert.is(s.queued, 1)
  assert.is(s.running, 2)
  assert.not.ok(g2started)
  s.release('cpu')
  await new Promise(resolve => setImmediate(resolve))
  assert.not.ok(g2started) // a CPU slot alone does not start a GPU task
  s.release('g1')
  await g2
  assert.ok(g2started)
  s.drain()
})

test('drain rejects everything waiting', async () => {
  const s = new SlotManager({ capacity: { ...capacity, cpuSlots: 1 } })
  await s.acquire('a', {})
  const w = rejection(s.acquire('b', {}))
  s.drain()
  assert.is((await w).code, 'PEER_STOPPED')
})

test.run()
