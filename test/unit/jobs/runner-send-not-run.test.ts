// A copy the provider did not run (PAYER_BEHIND, LEASE_SLOTS_BUSY, BUSY: src/jobs/runner-send.ts)
// goes again on the same lease instead of reaching the job machine as a failed copy; a
// PAYER_BEHIND answer sends the due voucher first (payNow). Bounded: a provider that keeps
// refusing gets its refusal counted after NOT_RUN_RETRIES.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { sendCopy, NOT_RUN_RETRIES, type CopySender } from '../../../src/jobs/runner-send.js'
import { CodeCache, validateManifest } from '../../../src/core/scheduler/index.js'
import type { JobTransport } from '../../../src/jobs/transport.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

function sender (answers: string[], log: string[]): CopySender {
  const r = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { list: [1, 2] }, task: { timeoutMs: 60_000 } })
  if (!r.ok) throw new Error('bad manifest')
  let n = 0
  const transport = {
    runTask: async (_provider: string, task: dbc.task.v1.ITask): Promise<dbc.task.v1.ITaskResult> => {
      const code = answers[Math.min(n++, answers.length - 1)]
      log.push(`run:${code}`)
      if (code === 'ok') return { taskId: task.taskId, ok: true, output: new Uint8Array([1]) }
      return { taskId: task.taskId, ok: false, code, error: `${code}: refused` }
    }
  } as unknown as JobTransport
  return {
    m: r.manifest,
    jobId: 'ab',
    jobIdBytes: new Uint8Array([0xab]),
    codeHash: new Uint8Array(32),
    code: new Uint8Array([0, 97, 115, 109]),
    cache: new CodeCache(),
    transport,
    leaseIds: new Map([['L', new Uint8Array([1])]]),
    payNow: async (provider) => { log.push(`pay:${provider}`) }
  }
}

const copy = { type: 'run' as const, index: 0, attempt: 1, leaseId: 'L', provider: 'P', reason: 'initial' as const }

test('PAYER_BEHIND: the voucher goes out at once, then the same copy again; the runner sees only the ok result', async () => {
  const log: string[] = []
  const res = await sendCopy(sender(['PAYER_BEHIND', 'ok'], log), copy, AbortSignal.timeout(30_000))
  assert.is(res.ok, true)
  assert.equal(log, ['run:PAYER_BEHIND', 'pay:P', 'run:ok'])
})

test('LEASE_SLOTS_BUSY and BUSY: resent on the lease without a voucher; the copy is not failed', async () => {
  const log: string[] = []
  const res = await sendCopy(sender(['LEASE_SLOTS_BUSY', 'BUSY', 'ok'], log), copy, AbortSignal.timeout(30_000))
  assert.is(res.ok, true)
  assert.equal(log, ['run:LEASE_SLOTS_BUSY', 'run:BUSY', 'run:ok'])
})

test('a real failure is not resent; a provider that keeps refusing is answered after the bounded retries', async () => {
  const log: string[] = []
  const failed = await sendCopy(sender(['TASK_FAILED', 'ok'], log), copy, AbortSignal.timeout(30_000))
  assert.is(failed.ok, false)
  assert.equal(log, ['run:TASK_FAILED'])
  const log2: string[] = []
  const refused = await sendCopy(sender(['LEASE_SLOTS_BUSY'], log2), copy, AbortSignal.timeout(60_000))
  assert.is(refused.ok, false)
  assert.is(refused.code, 'LEASE_SLOTS_BUSY')
  assert.is(log2.length, NOT_RUN_RETRIES + 1, 'the first send and NOT_RUN_RETRIES resends')
})

test('an abort while waiting to resend stops the copy', async () => {
  const log: string[] = []
  const ac = new AbortController()
  const s = sender(['BUSY'], log)
  s.payNow = undefined
  const p = sendCopy(s, copy, ac.signal).then(() => 'resolved', () => 'rejected')
  while (log.length < 2) await new Promise(resolve => setTimeout(resolve, 5))
  ac.abort(new Error('cancelled'))
  assert.is(await p, 'rejected')
})

test.run()
