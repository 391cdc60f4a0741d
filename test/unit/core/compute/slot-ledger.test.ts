import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { SlotLedger } from '../../../../src/core/compute/slot-ledger.js'

const gpus = [{ index: 0, model: 'RTX4090', memoryMib: 24576 }, { index: 1, model: 'RTX4090', memoryMib: 24576 }, { index: 2, model: 'A100', memoryMib: 81920 }]

test('allocates CPU, memory and GPUs, and frees them', () => {
  const l = new SlotLedger({ cpuSlots: 4, memoryMib: 1000, gpus })
  const a = l.allocate('a', { cpus: 1, memoryMib: 400, gpus: 2, gpuModel: 'RTX4090' })
  assert.is(a.kind, 'fits')
  assert.equal(a.kind === 'fits' ? a.grant.gpuIndexes : [], [0, 1])
  assert.is(l.check({ gpus: 1, gpuModel: 'RTX4090' }).kind, 'wait')
  assert.is(l.check({ gpus: 1 }).kind, 'fits') // the A100 is still free
  assert.is(l.check({ memoryMib: 700 }).kind, 'wait')
  assert.equal(l.free(), { cpus: 3, memoryMib: 600, gpus: 1 })
  assert.ok(l.release('a'))
  assert.not.ok(l.release('a'))
  assert.equal(l.free(), { cpus: 4, memoryMib: 1000, gpus: 3 })
})

test('never-fitting demands say why', () => {
  const l = new SlotLedger({ cpuSlots: 2, memoryMib: 1000, gpus })
  const never = [
    [{ cpus: 3 }, /3 CPU slots, this peer has 2/],
    [{ memoryMib: 2000 }, /2000 MiB/],
    [{ gpus: 2, gpuModel: 'A100' }, /2x A100.*1 matching/],
    [{ gpus: 1, gpuModel: 'RTX4090', gpuMemoryMib: 40000 }, /40000 MiB.*0 matching/]
  ] as const
  for (const [d, re] of never) {
    const a = l.check(d)
    assert.is(a.kind, 'never')
    assert.match(a.kind === 'never' ? a.reason : '', re)
  }
})

test('capacity counts for offers', () => {
  const l = new SlotLedger({ cpuSlots: 8, memoryMib: 1024, gpus })
  assert.is(l.concurrentCapacity({ cpus: 1, memoryMib: 256 }), 4)
  assert.is(l.concurrentCapacity({ gpus: 1, gpuModel: 'RTX4090' }), 2)
  l.allocate('x', { gpus: 1, gpuModel: 'RTX4090' })
  assert.is(l.freeSlotsFor({ gpus: 1, gpuModel: 'RTX4090' }), 1)
  assert.is(l.freeSlotsFor({ cpus: 2 }), 3)
})

test('property: never over-allocates, release restores', () => {
  fc.assert(fc.property(fc.array(fc.record({ cpus: fc.integer({ min: 1, max: 3 }), memoryMib: fc.integer({ min: 0, max: 600 }), gpus: fc.integer({ min: 0, max: 2 }), release: fc.boolean() }), { maxLength: 40 }), ops => {
    const l = new SlotLedger({ cpuSlots: 4, memoryMib: 1000, gpus })
    const held: string[] = []
    ops.forEach((op, i) => {
      if (op.release && held.length > 0) l.release(held.shift() as string)
      else if (l.allocate(`t${i}`, op).kind === 'fits') held.push(`t${i}`)
      const f = l.free()
      if (f.cpus < 0 || f.memoryMib < 0 || f.gpus < 0) throw new Error(`over-allocated: ${JSON.stringify(f)}`)
    })
    for (const id of held) l.release(id)
    assert.equal(l.free(), { cpus: 4, memoryMib: 1000, gpus: 3 })
  }))
})

test.run()
