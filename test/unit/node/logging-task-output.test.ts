// Task logs: what executors capture of a task's stderr (tail kept, total counted, failures too),
// how the submitter bounds and stores what a provider sent, the job's events, and how the CLI
// prints them (labelled, control characters stripped).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { TailBuffer, taskLogOf, withTaskLog, TASK_LOG_TAIL_BYTES } from '../../../src/compute/executors/output-tail.js'
import { StreamDemuxer } from '../../../src/compute/executors/docker/stream.js'
import { WasmExecutor } from '../../../src/compute/executors/wasm.js'
import { ProcessExecutor } from '../../../src/compute/executors/process.js'
import { isolationSupport } from '../../../src/compute/isolation/index.js'
import { boundTaskLog, printable, TASK_LOG_KEEP_BYTES } from '../../../src/jobs/task-output.js'
import { TaskLogStore, recordingTaskLogs, jobEvents, jobLogView, followJobEvents } from '../../../src/jobs/task-logs.js'
import { JobStore } from '../../../src/jobs/store.js'
import { openStore } from '../../../src/store/db.js'
import { formatJobEvent } from '../../../src/cli/logs-format.js'
import type { JobTransport } from '../../../src/jobs/transport.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { module, section, vec, name, leb, limits } from '../compute/wasm-bytes.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const mod = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../src/compute/modules/${name}.wasm`, import.meta.url)))

test('the tail buffer keeps the last bytes whatever the chunk sizes, and counts them all', () => {
  const t = new TailBuffer(10)
  t.push(enc.encode('abc'))
  assert.is(t.text(), 'abc')
  t.push(enc.encode('defghij'))
  assert.is(t.text(), 'abcdefghij')
  t.push(enc.encode('klm'))
  assert.is(t.text(), 'defghijklm')
  t.push(enc.encode('0123456789ABCDEF')) // one chunk larger than the cap
  assert.is(t.text(), '6789ABCDEF')
  assert.is(t.total, 3 + 7 + 3 + 16)
  // many small writes wrap the ring many times
  const u = new TailBuffer(7)
  let all = ''
  for (let i = 0; i < 100; i++) { const s = String(i % 10); all += s; u.push(enc.encode(s)) }
  assert.is(u.text(), all.slice(-7))
  assert.equal(u.log().stderrBytes, 100)
})

test('an error carries the log of the task that failed; primitives and empty logs are left alone', () => {
  const err = withTaskLog(new Error('x'), { stderr: enc.encode('why'), stderrBytes: 3 })
  assert.is(dec.decode(taskLogOf(err)?.stderr), 'why')
  assert.is(taskLogOf(withTaskLog(new Error('y'), { stderr: new Uint8Array(), stderrBytes: 0 })), undefined)
  assert.is(taskLogOf('a string'), undefined)
})

test('docker stream: stderr keeps its tail and total across frames split anywhere', () => {
  const frame = (stream: number, s: string): Uint8Array => {
    const p = enc.encode(s)
    const h = new Uint8Array(8 + p.length)
    h[0] = stream
    new DataView(h.buffer).setUint32(4, p.length)
    h.set(p, 8)
    return h
  }
  const d = new StreamDemuxer({ maxStdoutBytes: 100, stderrTailBytes: 8 })
  const bytes = new Uint8Array([...frame(2, 'hello '), ...frame(1, 'out'), ...frame(2, 'world!!')])
  for (let i = 0; i < bytes.length; i += 3) d.push(bytes.subarray(i, i + 3))
  assert.is(dec.decode(d.stdout()), 'out')
  assert.is(d.stderrTail(), 'o world!!'.slice(-8))
  assert.is(d.stderrLog().stderrBytes, 13)
})

test('wasm: a WASI task\'s stderr comes back with its result, and with its failure', async () => {
  const ex = new WasmExecutor({ workers: 1 })
  try {
    const base = { taskId: 't', code: mod('wasi-log'), entry: '', timeoutMs: 10_000, memoryLimitMib: 16, maxOutputBytes: 1 << 20 }
    const ok = await ex.run({ ...base, input: enc.encode('hello log') })
    assert.is(dec.decode(ok.output), 'HELLO LOG')
    assert.is(dec.decode(ok.log?.stderr), 'wasi-log: read 9 bytes\nhello log')
    assert.is(ok.log?.stderrBytes, 'wasi-log: read 9 bytes\nhello log'.length)
    let failed: unknown
    try { await ex.run({ ...base, input: enc.encode('fail: disk on fire') }) } catch (err) { failed = err }
    assert.is((failed as { code?: string }).code, 'TASK_EXIT_CODE')
    assert.match((failed as Error).message, /disk on fire/)
    assert.match(dec.decode(taskLogOf(failed)?.stderr), /^wasi-log: read 18 bytes\nfail: disk on fire$/)
    // a task that writes more than the tail keeps the end, and says how much it wrote
    // (the module reads at most 64 KiB of input; with its header line, its stderr is past the tail)
    const big = 'x'.repeat(65_520) + 'THE END'
    const r = await ex.run({ ...base, input: enc.encode(big) })
    assert.is(r.log?.stderr.length, TASK_LOG_TAIL_BYTES)
    assert.ok(dec.decode(r.log?.stderr).endsWith('xTHE END'))
    assert.is(r.log?.stderrBytes, `wasi-log: read ${big.length} bytes\n`.length + big.length)
    // a module that writes nothing to stderr has no log
    const quiet = await ex.run({ ...base, code: mod('wasi-upper'), input: enc.encode('q') })
    assert.is(quiet.log, undefined)
  } finally {
    await ex.close()
  }
})

/** An ABI module whose run() calls AssemblyScript's trace("hi", 1, 2.5) and returns an empty output. */
function tracingModule (): Uint8Array {
  const f64 = (x: number): number[] => [0x44, ...new Uint8Array(new Float64Array([x]).buffer)]
  const types = section(1, vec([[0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f], [0x60, 0x01, 0x7f, 0x01, 0x7f], [0x60, 0x07, 0x7f, 0x7f, 0x7c, 0x7c, 0x7c, 0x7c, 0x7c, 0x00]]))
  const imports = section(2, vec([[...name('env'), ...name('trace'), 0x00, 2]]))
  const funcs = section(3, vec([[1], [0]]))
  const mems = section(5, vec([limits(1, 1)]))
  const exports = section(7, vec([[...name('alloc'), 0x00, 1], [...name('run'), 0x00, 2], [...name('memory'), 0x02, 0]]))
  const run = [0x00, 0x41, 20, 0x41, 1, ...f64(2.5), ...f64(0), ...f64(0), ...f64(0), ...f64(0), 0x10, 0x00, 0x41, 0x00, 0x0b]
  const code = section(10, vec([[4, 0x00, 0x41, 32, 0x0b], [...leb(run.length), ...run]]))
  // an AssemblyScript string at 20: its byte length at 16, then UTF-16 "hi"
  const data = section(11, vec([[0x00, 0x41, 16, 0x0b, ...leb(8), 4, 0, 0, 0, 0x68, 0, 0x69, 0]]))
  return module(types, imports, funcs, mems, exports, code, data)
}

test('wasm: an ABI module\'s trace() calls are its log', async () => {
  const ex = new WasmExecutor({ workers: 1 })
  try {
    const r = await ex.run({ taskId: 'tr', code: tracingModule(), entry: 'run', input: new Uint8Array(0), timeoutMs: 10_000, memoryLimitMib: 16, maxOutputBytes: 1024 })
    assert.is(r.output.length, 0)
    assert.is(dec.decode(r.log?.stderr), 'trace: hi 2.5\n')
  } finally {
    await ex.close()
  }
})

const iso = isolationSupport()
test('process: stderr is captured (its tail) on success and on a non-zero exit', async () => {
  if (!iso.available) { console.log(`process isolation unavailable, skipped: ${iso.reason ?? ''}`); return }
  const ex = new ProcessExecutor({ enabled: true })
  try {
    const base = { taskId: 'p', code: new Uint8Array(0), input: new Uint8Array(0), timeoutMs: 10_000, memoryLimitMib: 64, maxOutputBytes: 1 << 20 }
    const ok = await ex.run({ ...base, entry: 'echo out; echo "to stderr" >&2' })
    assert.is(dec.decode(ok.output), 'out\n')
    assert.is(dec.decode(ok.log?.stderr), 'to stderr\n')
    let failed: unknown
    try { await ex.run({ ...base, entry: 'head -c 70000 /dev/zero | tr "\\0" a >&2; echo LAST >&2; exit 4' }) } catch (err) { failed = err }
    assert.is((failed as { code?: string }).code, 'TASK_EXIT_CODE')
    const log = taskLogOf(failed)
    assert.is(log?.stderrBytes, 70005)
    assert.is(log?.stderr.length, TASK_LOG_TAIL_BYTES)
    assert.ok(dec.decode(log?.stderr).endsWith('aLAST\n'))
  } finally {
    await ex.close()
  }
})

test('the submitter bounds what a provider sent: the tail, and a total no smaller than what came', () => {
  const b = boundTaskLog(enc.encode('abcdef'), 2, 4)
  assert.is(dec.decode(b?.stderr), 'cdef')
  assert.is(b?.totalBytes, 6) // a provider that claims less than it sent is not believed
  assert.is(boundTaskLog(enc.encode('ab'), Number.POSITIVE_INFINITY)?.totalBytes, 2)
  assert.is(boundTaskLog(enc.encode('ab'), 1e300)?.totalBytes, 2 ** 32)
  assert.is(boundTaskLog(new Uint8Array(), 100), undefined)
  assert.is(boundTaskLog(null, null), undefined)
  assert.is(boundTaskLog(new Uint8Array(TASK_LOG_KEEP_BYTES * 3), 0)?.stderr.length, TASK_LOG_KEEP_BYTES)
})

test('printable strips escape sequences, control characters and bidi overrides, keeps text, tabs and newlines', () => {
  const hostile = 'ok\tline\r\n\u001b[2J\u001b[31mred\u001b[0m \u001b]0;pwned title\u0007done\u0000\u0007\u0008\u009b31m \u202eevil\u202c é 日本\n'
  assert.is(printable(hostile), 'ok\tline\nred done evil é 日本\n')
  assert.is(printable('a\rb'), 'ab') // a bare carriage return would overwrite the line
})

function memoryJobs (): { jobs: JobStore, logs: TaskLogStore } {
  const store = openStore(':memory:')
  return { jobs: new JobStore(store), logs: new TaskLogStore(store, { perCopy: 16, perJob: 40, afterBudget: 4 }) }
}

function addJob (jobs: JobStore, jobId: string, at: number): void {
  jobs.createJob({ jobId, owner: new Uint8Array(1), manifest: '{}', manifestHash: new Uint8Array(1), createdAt: at, nonce: new Uint8Array(1), signature: new Uint8Array(1), status: 'running', taskCount: 2, updatedAt: at })
}

test('stored logs: first write per copy wins, each copy capped, the job\'s budget shrinks later copies', () => {
  const { logs } = memoryJobs()
  assert.ok(logs.record('j', 0, 0, 'P1', enc.encode('first'), 5, 1))
  assert.not.ok(logs.record('j', 0, 0, 'P1', enc.encode('replayed'), 8, 2))
  assert.is(dec.decode(logs.get('j', 0, 0)?.stderr), 'first')
  logs.record('j', 1, 0, 'P1', enc.encode('y'.repeat(100)), 100, 3)
  assert.is(logs.get('j', 1, 0)?.stderr.length, 16)
  assert.is(logs.get('j', 1, 0)?.totalBytes, 100)
  logs.record('j', 2, 0, 'P2', enc.encode('z'.repeat(100)), 100, 4)
  assert.is(logs.bytes('j'), 5 + 16 + 16)
  logs.record('j', 3, 0, 'P2', enc.encode('w'.repeat(100)), 100, 5) // 37 < 40: still the full cap
  logs.record('j', 4, 0, 'P2', enc.encode('0123456789'), 10, 6) // past the budget: 4 bytes
  assert.is(dec.decode(logs.get('j', 4, 0)?.stderr), '6789')
  assert.is(logs.list('j').length, 5)
})

test('the recording transport stores a result\'s stderr under the copy that was sent, and passes the rest through', async () => {
  const { logs } = memoryJobs()
  let heartbeats = 0
  class Fake {
    private readonly secret = 'bound'
    async requestOffers (): Promise<[]> { return [] }
    async openLease (): Promise<void> {}
    // a provider that claims another job and task in its result: the log still lands on the copy sent
    async runTask (_p: string, task: dbc.task.v1.ITask): Promise<dbc.task.v1.ITaskResult> { return { taskId: enc.encode('other'), jobId: enc.encode('other-job'), attempt: 9, ok: true, stderr: enc.encode(`log of ${String(task.index)}`), stderrBytes: 8 } }
    onHeartbeat (): () => void { heartbeats++; return () => { void this.secret } }
  }
  const t = recordingTaskLogs(new Fake() as unknown as JobTransport, logs, 'job-1')
  const r = await t.runTask('P9', { index: 3, attempt: 1 }, {})
  assert.is(r.ok, true)
  t.onHeartbeat(() => {})()
  assert.is(heartbeats, 1)
  assert.is(dec.decode(logs.get('job-1', 3, 1)?.stderr), 'log of 3')
  assert.is(logs.get('job-1', 3, 1)?.provider, 'P9')
  assert.is(logs.list('other-job').length, 0)
})

test('job events: placed, returned with reason and log, retried, task failed, ended, in time order', async () => {
  const { jobs, logs } = memoryJobs()
  addJob(jobs, 'J', 1000)
  jobs.copyStarted('J', { index: 0, attempt: 0, provider: 'P1', leaseId: 'L', reason: 'initial', startedAt: 1100 })
  jobs.copyStarted('J', { index: 1, attempt: 0, provider: 'P2', leaseId: 'L', reason: 'initial', startedAt: 1100 })
  jobs.copyResult('J', 1, 0, { outcome: 'failed', error: 'TASK_EXIT_CODE: exited with code 3', endedAt: 1200 })
  logs.record('J', 1, 0, 'P2', enc.encode('boom\n'), 5, 1200)
  jobs.copyStarted('J', { index: 1, attempt: 1, provider: 'P1', leaseId: 'L', reason: 'retry', startedAt: 1300 })
  jobs.copyResult('J', 0, 0, { outcome: 'agreed', hash: 'h', error: '', endedAt: 1400 }) // an ok copy's error is empty
  const seen: string[] = []
  const ac = new AbortController()
  let waits = 0
  // a follower started while the job runs sees the rest as it happens, and the end
  const follow = followJobEvents(jobs, logs, 'J', e => { seen.push(e.key) }, async () => {
    waits++
    if (waits === 1) {
      jobs.copyResult('J', 1, 1, { outcome: 'failed', error: 'TASK_TRAP: again', endedAt: 1500 })
      jobs.failTask('J', 1, 'every copy failed')
      jobs.setJobStatus('J', 'failed', 1600)
    }
  }, ac.signal)
  assert.is(await follow, 'failed')
  const ev = jobEvents(jobs, 'J')
  assert.equal(ev.map(e => e.key), ['submitted', 'p:0:0', 'p:1:0', 'r:1:0:failed', 'p:1:1', 'r:0:0:agreed', 'r:1:1:failed', 'f:1', 'ended'])
  assert.equal(seen, ev.map(e => e.key)) // each once, none lost
  const view = jobLogView(jobs, logs, 'J')
  const failed = view?.events.find(e => e.key === 'r:1:0:failed')
  assert.equal(failed?.log, { text: 'boom\n', bytes: 5, kept: 5, truncated: false })
  assert.is(view?.events.find(e => e.kind === 'ended')?.failed, 1)
  assert.is(view?.events.find(e => e.key === 'r:0:0:agreed')?.error, undefined)
  assert.not.match(formatJobEvent({ ...view!.events.find(e => e.key === 'r:0:0:agreed')!, error: '' }), /: \n/)
  assert.is(jobLogView(jobs, logs, 'nope'), undefined)
})

test('the CLI prints each event on a line and a copy\'s stderr labelled with its task, stripped', () => {
  const out = formatJobEvent({ key: 'r:4:1:failed', at: Date.UTC(2026, 11, 5, 23, 30, 1, 250), kind: 'returned', index: 4, attempt: 1, provider: '12D3KooWAbCdEfGhIjKlMnOpQrStUv', outcome: 'failed', ms: 1500, error: 'TASK_EXIT_CODE: code 3\u001b[2J', log: { text: 'line one\n\u001b]0;x\u0007line two\n', bytes: 9000, kept: 20, truncated: true } })
  assert.is(out, '23:30:01.250  task 4 copy 1 failed on 12D3KooW…QrStUv after 1.50 s: TASK_EXIT_CODE: code 3\n' +
    '  --- stderr of task 4 copy 1 on 12D3KooW…QrStUv, the last 20 of 9000 bytes (the start was cut)\n' +
    '  task 4.1 | line one\n' +
    '  task 4.1 | line two\n')
  assert.match(formatJobEvent({ key: 'p:0:1', at: 0, kind: 'placed', index: 0, attempt: 1, provider: 'P', reason: 'retry' }), /task 0 copy 1 retried on P/)
  assert.match(formatJobEvent({ key: 'ended', at: 0, kind: 'ended', status: 'finished', done: 3, failed: 0 }), /job finished: 3 task\(s\) done, 0 failed/)
})

test.run()
