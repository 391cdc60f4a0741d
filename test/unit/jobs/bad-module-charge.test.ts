// A provider charges the sender of a task whose module it refused at validation, once per (sender,
// module) and then once every MODULE_REFUSALS_PER_CHARGE refusals; never for a module stopped while it
// ran, nor for a module refused for a reason our own submitter does not check (V8's compile errors).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ComputePeer } from '../../../src/compute/index.js'
import { ComputePeerProvider } from '../../../src/jobs/compute-provider.js'
import { signLease } from '../../../src/core/scheduler/ownership.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { ModuleOffences, MODULE_REFUSALS_PER_CHARGE } from '../../../src/core/compute/module-offences.js'
import type { WireError } from '../../../src/errors.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { withMemories } from '../compute/wasm-bytes.js'

const mod = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../src/compute/modules/${name}.wasm`, import.meta.url)))

test('ModuleOffences: the first refusal of a (sender, module) charges, then one in every N', () => {
  const o = new ModuleOffences(3, 4)
  assert.equal([1, 2, 3, 4, 5, 6, 7].map(() => o.refused('a', 'm1')), [true, false, false, true, false, false, true])
  assert.ok(o.refused('a', 'm2'), 'another module is another offence')
  assert.ok(o.refused('b', 'm1'), 'another sender too')
  for (let i = 0; i < 10; i++) o.refused(`x${i}`, 'm')
  assert.is(o.size, 4, 'bounded')
  assert.ok(o.refused('a', 'm1'), 'a forgotten pair charges again')
  // the documented policy: a 1000-task job with one bad module is charged well past a ban (5-6 offences),
  // a one-off job of 200 tasks at most four times
  const d = new ModuleOffences()
  const charges = (n: number, s: string): number => Array.from({ length: n }, () => d.refused(s, 'm')).filter(Boolean).length
  assert.is(charges(1000, 'hostile'), Math.ceil(1000 / MODULE_REFUSALS_PER_CHARGE))
  assert.is(charges(200, 'one-off'), 4)
})

test('a provider charges a validation refusal of the sender\'s module, not a run-time stop or a compile error', async () => {
  const holderKey = randomBytes(32)
  const holder = peerIdBytesFromEd25519Key(ed25519PublicKey(holderKey))
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false })
  await peer.start()
  const provider = new ComputePeerProvider(peer)
  const charged: WireError[] = []
  const charge = (err: WireError): void => { charged.push(err) }
  try {
    const jobId = randomBytes(16)
    const offer = provider.offer({ jobId, requester: holder, slots: 1, executor: 'wasm', expectedTaskMs: 10, maxInputBytes: 64, requestExpiresAt: Date.now() + 10_000 })
    assert.is(offer.refusal ?? '', '', `the offer was refused: ${offer.refusal ?? ''}`)
    const leaseId = randomBytes(16)
    provider.openLease(signLease(holderKey, { leaseId, offerId: offer.offerId, jobId, holder, provider: peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000 }), holder)
    let n = 0
    const run = async (code: Uint8Array, memoryLimitMib = 16, c: typeof charge | null = charge): Promise<dbc.task.v1.ITaskResult> =>
      await provider.runTask({ taskId: randomBytes(8), jobId, leaseId, index: n, attempt: n++, executor: 'wasm', code, entry: 'run', input: new Uint8Array(8), deadlineMs: 20_000, memoryLimitMib }, holder, { charge: c ?? undefined })

    const bomb = withMemories(4, 1, 1)
    const r1 = await run(bomb)
    assert.is(r1.ok, false)
    assert.match(r1.error ?? '', /^TASK_BAD_MODULE: the module was refused before it ran: the module declares too many memories/)
    assert.is(charged.length, 1)
    assert.is(charged[0].code, 'TASK_BAD_MODULE')
    assert.match(charged[0].message, /too many memories \(declared \+ imported\): 4/)
    // the same module again: refused again, not charged again (until MODULE_REFUSALS_PER_CHARGE more)
    for (let i = 0; i < 3; i++) assert.match((await run(bomb)).error ?? '', /^TASK_BAD_MODULE/)
    assert.is(charged.length, 1)
    // a different bad module: charged
    assert.match((await run(new TextEncoder().encode('not wasm at all'))).error ?? '', /^TASK_BAD_MODULE: the task code is not a usable WebAssembly module/)
    assert.is(charged.length, 2)
    // stopped at run time (memory cap): not charged
    const mem = await run(mod('membomb'), 24)
    assert.match(mem.error ?? '', /^TASK_MEMORY_LIMIT/)
    // refused by V8's compiler only (our submitter checks it with WebAssembly.validate, but V8 versions differ)
    const broken = withMemories(1, 1, 1)
    broken[broken.findIndex((b, i) => b === 0x41 && broken[i + 1] === 16 && broken[i + 2] === 0x0b)] = 0xff
    assert.match((await run(broken)).error ?? '', /^TASK_BAD_MODULE: the task code does not compile/)
    // a transport that does not charge (in-process): nothing to call
    assert.match((await run(withMemories(2, 1, 1), 16, null)).error ?? '', /^TASK_BAD_MODULE/)
    assert.is(charged.length, 2)
    // an honest module runs
    const ok = await run(mod('square'))
    assert.is(ok.ok, true, ok.error ?? '')
    assert.is(charged.length, 2)
  } finally {
    await peer.stop()
  }
})

test.run()
