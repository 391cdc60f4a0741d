// The job commands end to end through the real CLI against real daemons: submit a manifest,
// read results, explain, the job's payments on the shared chain (`dbc job settle`, twice: the
// second changes nothing), and the errors people see.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
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
  // the same for people: lines, one per copy, with its route
  const whyText = dbc(['--data-dir', submitter.dataDir, 'job', 'explain', jobId, '--task', '4']).stdout
  assert.match(whyText, /\ntask 4: done \(accepted output sha256 [0-9a-f]{16}\.\.\.\)\n/)
  assert.is(whyText.match(/\n {2}copy \d+ \(\w+\) on \S+: agreed/g)?.length, 2, whyText)
  const list = dbc(['--data-dir', submitter.dataDir, 'job', 'list'])
  assert.match(list.stdout, new RegExp(jobId.slice(0, 16) + '\\s+grid\\s+squares\\s+finished\\s+1000/1000'))
})

test('`dbc job settle` shows the job\'s escrow on the shared chain and what was signed and redeemed; asking again changes nothing', async () => {
  const first = JSON.parse((await dbcAsync(['--data-dir', submitter.dataDir, 'job', 'settle', jobId, '--json'], { timeoutMs: 120_000 })).stdout)
  const wallet = JSON.parse(dbc(['--data-dir', submitter.dataDir, 'wallet', '--json']).stdout)
  // the escrow was locked by this node before any lease and the job was closed on chain at its end
  assert.is(first.payer.toLowerCase(), wallet.account.toLowerCase())
  assert.ok(BigInt(first.escrow) > 0n, 'no escrow was deposited')
  assert.ok(first.closedAt > 0, 'the job was not closed on chain')
  assert.is(first.refunded, false)
  assert.is(BigInt(first.unspent), BigInt(first.escrow) - BigInt(first.paid))
  // providers are paid only what was signed for them, and the sums add up
  let signed = 0n; let redeemed = 0n
  for (const p of first.providers as Array<{ signed: string, redeemed: string }>) {
    assert.ok(BigInt(p.redeemed) <= BigInt(p.signed), `${JSON.stringify(p)}: redeemed more than signed`)
    signed += BigInt(p.signed); redeemed += BigInt(p.redeemed)
  }
  assert.is(BigInt(first.totals.signed), signed)
  assert.is(BigInt(first.totals.redeemed), redeemed)
  assert.is(BigInt(first.paid), redeemed)
  // the node's own record of the job agrees: what it committed is what it signed
  const view = JSON.parse(dbc(['--data-dir', submitter.dataDir, 'job', 'status', jobId, '--json']).stdout)
  assert.is(view.summary?.payment?.unit, 'DBC')
  // settling again pays nothing new and changes nothing on chain
  const again = JSON.parse((await dbcAsync(['--data-dir', submitter.dataDir, 'job', 'settle', jobId, '--json'], { timeoutMs: 120_000 })).stdout)
  for (const k of ['escrow', 'paid', 'unspent', 'closedAt', 'refunded', 'totals', 'providers']) assert.equal(again[k], first[k], `settling again changed ${k}`)
  const text = dbc(['--data-dir', submitter.dataDir, 'job', 'settle', jobId]).stdout
  assert.match(text, /payer\s+0x[0-9a-fA-F]{40} \(this node\)/)
  assert.match(text, /escrow\s+[\d.]+ DBC deposited/)
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

test('a job no provider can take says why while it keeps looking, then fails saying so', async () => {
  // one input of 17 MiB: above both providers' default limit (provider.maxTask.inputBytes, 16 MiB)
  const dir = join(sb.root, 'big')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'big.bin'), new Uint8Array(17 * 1024 * 1024))
  writeFileSync(join(dir, 'big.yaml'), `name: big\nexecutor: wasm\ncode: { wasm: ${join(repoRoot, 'src/compute/modules/square.wasm')} }\nentry: run\ninputs: { files: { paths: [big.bin] } }\nresources: { cores: 1, memoryMib: 64 }\n`)
  const r = await dbcAsync(['--data-dir', submitter.dataDir, 'job', 'submit', join(dir, 'big.yaml'), '--yes'], { timeoutMs: 120_000 })
  assert.is(r.code, 1, r.stdout + r.stderr)
  // before: ~10 s of "0/1 tasks done" and then the failure; now the reason, once, while it looks
  assert.match(r.stderr, /searching: not placed: .*INPUT_TOO_LARGE: task inputs up to \d+ bytes exceed this provider's limit of 16777216 bytes.*; the tasks fail in \d+ s unless a provider that can take them answers/)
  assert.is(r.stderr.match(/searching: /g)?.length, 1, r.stderr)
})

test.after(async () => { await sb.cleanup() })
test.run()
