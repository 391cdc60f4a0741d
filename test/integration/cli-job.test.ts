// The job commands end to end through the real CLI against real daemons: submit a manifest,
// read results, explain, settle twice (the second is a no-op), and the errors people see.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox, dbc, dbcAsync, repoRoot } from '../helpers/cli.js'

const sb = new Sandbox()
let submitter: { dataDir: string, peerId: string, addrs: string[] }
let jobId = ''

test.before(async () => {
  submitter = await sb.startNode('submitter', ['--location', 'Paris'])
  await Promise.all([sb.startNode('p1', ['--location', 'Berlin', '--bootstrap', submitter.addrs[0]]), sb.startNode('p2', ['--location', 'Madrid', '--bootstrap', submitter.addrs[0]])])
})

test('a malformed manifest is refused before submission, naming each bad field', () => {
  const bad = join(sb.root, 'bad.yaml')
  writeFileSync(bad, 'name: x\nexecutor: wasm\ncode: { wasm: a.wasm }\ninputs: { range: { from: 5, to: 1 } }\nresources: { gpus: 2 }\n')
  const r = dbc(['--data-dir', submitter.dataDir, 'job', 'submit', bad])
  assert.is(r.code, 1)
  assert.match(r.stderr, /inputs\.range\.to: must be >= from/)
  assert.match(r.stderr, /resources\.gpus: unknown field/)
  assert.not.match(r.stderr, /at .*\.ts:\d+/)
})

test('submit a job with the CLI, read its results and explain a task', async () => {
  const r = await dbcAsync(['--data-dir', submitter.dataDir, 'job', 'submit', join(repoRoot, 'examples/squares.yaml'), '--json'], { timeoutMs: 180_000 })
  assert.is(r.code, 0, r.stderr)
  const status = JSON.parse(r.stdout)
  assert.is(status.status, 'finished')
  assert.is(status.done, 1000)
  jobId = status.jobId
  const res = JSON.parse(dbc(['--data-dir', submitter.dataDir, 'job', 'results', jobId, '--json']).stdout) as { results: Array<{ index: number, output: string }> }
  assert.is(res.results.length, 1000)
  for (const x of res.results) assert.is(Buffer.from(x.output, 'base64').readDoubleLE(0), (x.index + 1) ** 2)
  const text = dbc(['--data-dir', submitter.dataDir, 'job', 'results', jobId]).stdout.split('\n')
  assert.is(text[2], '2\t9')
  const why = JSON.parse(dbc(['--data-dir', submitter.dataDir, 'job', 'explain', jobId, '--task', '4', '--json']).stdout)
  assert.is(why.task.status, 'done')
  assert.is(why.task.copies.length, 2) // redundancy 2, quorum 2
  assert.ok(why.task.copies.every((c: { outcome: string }) => c.outcome === 'agreed'))
  const list = dbc(['--data-dir', submitter.dataDir, 'job', 'list'])
  assert.match(list.stdout, new RegExp(jobId.slice(0, 16) + '\\s+squares\\s+finished\\s+1000/1000'))
})

test('settling pays once; settling again is a no-op', async () => {
  const first = JSON.parse((await dbcAsync(['--data-dir', submitter.dataDir, 'job', 'settle', jobId, '--json'], { timeoutMs: 120_000 })).stdout)
  assert.is(first.receipts, 2000)
  assert.ok(first.batches.length >= 1)
  assert.ok(first.batches.every((b: { state: string }) => b.state === 'confirmed'))
  const count = first.batches.reduce((n: number, b: { receiptCount: number }) => n + b.receiptCount, 0)
  assert.is(count, 2000)
  const again = JSON.parse((await dbcAsync(['--data-dir', submitter.dataDir, 'job', 'settle', jobId, '--json'], { timeoutMs: 120_000 })).stdout)
  assert.equal(again.batches.map((b: { batchId: string }) => b.batchId), first.batches.map((b: { batchId: string }) => b.batchId))
  const chain = JSON.parse(dbc(['--data-dir', submitter.dataDir, 'chain', 'status', '--json']).stdout)
  assert.is(chain.outbox.confirmed, first.batches.length)
  assert.is(chain.outbox.built + chain.outbox.sent, 0)
})

test('unknown jobs and bad arguments are clear errors', () => {
  let r = dbc(['--data-dir', submitter.dataDir, 'job', 'status', 'f'.repeat(64)])
  assert.is(r.code, 1)
  assert.match(r.stderr, /no (training )?job f{64}/)
  r = dbc(['--data-dir', submitter.dataDir, 'job', 'explain', jobId, '--task', '-3'])
  assert.is(r.code, 1)
  assert.match(r.stderr, /--task must be a task index/)
  r = dbc(['--data-dir', submitter.dataDir, 'stake', 'many'])
  assert.match(r.stderr, /GPUS must be a whole number/)
})

test.after(async () => { await sb.cleanup() })
test.run()
