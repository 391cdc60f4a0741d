// The submitter acts on TaskResult.code, not on the text (issue 15): a provider that lost the
// module answers CODE_MISSING in the code field with text that names no code, and the job's code
// cache sends the same copy again with the module (not a failed copy); a failure whose text
// starts "CODE_MISSING:" but whose code says otherwise is an ordinary failed copy.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { FakeProvider, JobRunner, LocalTransport } from '../../../src/jobs/index.js'
import { validateManifest } from '../../../src/core/scheduler/index.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

const key = (n: number): { secretKey: Uint8Array, peerId: Uint8Array } => {
  const secretKey = new Uint8Array(32).fill(n)
  return { secretKey, peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)) }
}
const owner = key(1)
const compute = (input: Uint8Array): Uint8Array => createHash('sha256').update(input).digest()

/** Answers its first code-less task as `answer` says; counts the tasks that came with the module. */
class Forgetful extends FakeProvider {
  withCode = 0
  answered = false
  constructor (n: number, private readonly answer: (base: dbc.task.v1.ITaskResult) => dbc.task.v1.ITaskResult) {
    super({ secretKey: key(n).secretKey, compute, slots: 1 })
  }

  override async runTask (task: dbc.task.v1.ITask, sender: Uint8Array): Promise<dbc.task.v1.ITaskResult> {
    if ((task.code?.length ?? 0) > 0) this.withCode++
    else if (!this.answered) {
      this.answered = true
      return this.answer({ taskId: task.taskId, jobId: task.jobId, attempt: task.attempt })
    }
    return await super.runTask(task, sender)
  }
}

async function run (p: Forgetful): Promise<{ done: number, failed: number, copies: number, retries: number }> {
  const tr = new LocalTransport([p], { sender: owner.peerId, heartbeatMs: 100 })
  const m = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 3 } }, task: { timeoutMs: 30_000, expectedMs: 1, maxAttempts: 3 }, verification: { mode: 'off' } })
  if (!m.ok) throw new Error(JSON.stringify(m.issues))
  try {
    const s = await new JobRunner({ jobId: 'c0de'.padStart(64, '0'), manifest: m.manifest, holder: owner, transport: tr, code: new Uint8Array([0, 97, 115, 109]), leaseTimeoutMs: 5_000 }).run()
    return { done: s.done, failed: s.failed, copies: s.copies, retries: s.retries }
  } finally { tr.close() }
}

test('CODE_MISSING in the code field: the copy goes again with the module, not counted as failed', async () => {
  const p = new Forgetful(10, base => ({ ...base, ok: false, code: 'CODE_MISSING', error: 'this provider lost the module' }))
  // the first task carries the module; the provider then "forgets" it on the next code-less one
  const s = await run(p)
  assert.is(s.done, 4)
  assert.is(s.failed, 0)
  assert.is(s.retries, 0, 'a resend is not a retry')
  assert.is(p.withCode, 2, 'the module went with the first task and again with the resent one')
})

test('text that starts "CODE_MISSING:" with another code is an ordinary failure, not a resend', async () => {
  const p = new Forgetful(11, base => ({ ...base, ok: false, code: 'TASK_TRAP', error: 'CODE_MISSING: not really' }))
  const s = await run(p)
  // one provider, which failed the copy: the task cannot go elsewhere and fails
  assert.is(p.withCode, 1, 'no resend with the module')
  assert.is(s.failed, 1, 'the copy counted as failed')
  assert.is(s.done, 3)
})

test.run()
