// A failed task's typed code travels in TaskResult.code (issue 15): the submitter reads the code,
// never the provider's text. Over /dbc/task/1.0.0 between two hosts in this process: a
// provider's own code arrives as sent (CODE_MISSING), a result built from the provider's text
// only gets its code on the provider's side, a thrown typed error (TASK_TOO_LONG) and a refused
// frame (TASK_TOO_LARGE) arrive as failed results with their codes, and a hostile provider's
// code that is not a code's shape is read as TASK_FAILED.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport } from '../../../src/net/tasks.js'
import { resultCode, withOwnCode, type LocalProvider } from '../../../src/core/scheduler/ports.js'
import { DbcError } from '../../../src/errors.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

test('resultCode trusts a code only by its shape; withOwnCode reads the provider\'s own text', () => {
  assert.is(resultCode({ ok: true, code: 'X' }), undefined)
  assert.is(resultCode({ ok: false, code: 'ROUTE_LIMIT', error: 'anything' }), 'ROUTE_LIMIT')
  assert.is(resultCode({ ok: false, error: 'CODE_MISSING: send it' }), 'TASK_FAILED', 'the text is for people: no code field, no code')
  assert.is(resultCode({ ok: false, code: 'CODE_MISSING: and some text' }), 'TASK_FAILED')
  assert.is(resultCode({ ok: false, code: 'lower' }), 'TASK_FAILED')
  assert.is(resultCode({ ok: false, code: 'A'.repeat(80) }), 'TASK_FAILED')
  assert.is(withOwnCode({ ok: false, error: 'TASK_TIMEOUT: 30 s' }).code, 'TASK_TIMEOUT')
  assert.is(withOwnCode({ ok: false, error: 'refused: the lease is closed' }).code, 'TASK_FAILED')
  assert.is(withOwnCode({ ok: false, code: 'CODE_MISSING', error: 'TASK_TIMEOUT: x' }).code, 'CODE_MISSING')
  assert.is(withOwnCode({ ok: true }).code, undefined)
})

/** A provider that grants every lease and answers each task as `answer` says (by the task's first input byte). */
class Scripted implements LocalProvider {
  readonly id = 'scripted'
  constructor (private readonly answer: (n: number, base: dbc.task.v1.ITaskResult) => dbc.task.v1.ITaskResult) {}
  offer (): dbc.task.v1.IOffer { return { offerId: new Uint8Array([1]), slots: 4, expiresAt: Date.now() + 60_000 } }
  openLease (): void {}
  leasedInputBytes (): number { return 0 }
  async runTask (task: dbc.task.v1.ITask): Promise<dbc.task.v1.ITaskResult> {
    return this.answer(task.input?.[0] ?? 0, { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt })
  }
}

const newHost = async (): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })

test('codes cross the wire in TaskResult.code; typed refusals become failed results with their code', async () => {
  const providerHost = await newHost()
  const submitter = await newHost()
  const provider = new Scripted((n, base) => {
    if (n === 1) return { ...base, ok: false, code: 'CODE_MISSING', error: 'the module is not held here' }
    if (n === 2) return { ...base, ok: false, error: 'TASK_TIMEOUT: ran past 30 s' }
    if (n === 3) throw new DbcError('TASK_TOO_LONG', 'deadline above this provider\'s limit')
    if (n === 4) return { ...base, ok: false, code: 'BUSY: ignore the rest, pay me', error: 'x' }
    return { ...base, ok: true, output: new Uint8Array([n]) }
  })
  await registerTaskProtocol(providerHost, provider, { heartbeatMs: 100 })
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [providerHost.peerId], offerTimeoutMs: 15_000 })
  try {
    await submitter.dial(providerHost.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
    const id = providerHost.peerId.toString()
    const leaseId = new Uint8Array(randomBytes(16))
    await tr.openLease(id, { leaseId, heartbeatMs: 100 }, { signal: AbortSignal.timeout(15_000) })
    const run = async (input: Uint8Array): Promise<dbc.task.v1.ITaskResult> => await tr.runTask(id, { taskId: new Uint8Array([input[0]]), leaseId, attempt: 1, input }, { signal: AbortSignal.timeout(30_000) })

    const ok = await run(new Uint8Array([9]))
    assert.ok(ok.ok)
    assert.is(ok.code ?? '', '')
    const missing = await run(new Uint8Array([1]))
    assert.is(missing.ok, false)
    assert.is(missing.code, 'CODE_MISSING')
    assert.is(missing.error, 'the module is not held here', 'the text is not rewritten')
    assert.is((await run(new Uint8Array([2]))).code, 'TASK_TIMEOUT')
    assert.is((await run(new Uint8Array([3]))).code, 'TASK_TOO_LONG')
    assert.is((await run(new Uint8Array([4]))).code, 'TASK_FAILED', 'a code that is not a code\'s shape is not trusted')
    // above the lease's frame limit (the module allowance and 0 announced input bytes): refused typed
    const big = new Uint8Array(9 * 1024 * 1024).fill(9)
    const tooLarge = await run(big)
    assert.is(tooLarge.ok, false)
    assert.is(tooLarge.code, 'TASK_TOO_LARGE')
  } finally {
    tr.close()
    await submitter.stop()
    await providerHost.stop()
  }
})

test.run()
