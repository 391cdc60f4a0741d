// Logs end to end with real daemons (detached, as an operator runs them): a wasm job whose tasks
// write to stderr (src/compute/modules/wasi-log.wasm), one of them failing; `dbc job logs J`
// prints the job's events and each task's stderr labelled with its task and provider, stripped
// of the escape sequences a task wrote; `--follow` started while the job runs ends with the job's
// end; `dbc node logs` prints the node's start line from <data-dir>/logs/node.log.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { existsSync, lstatSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox, dbc, dbcAsync, dbcBin, repoRoot } from '../helpers/cli.js'
import { ApiClient } from '../../src/api/client.js'

const sb = new Sandbox()
let submitter: { dataDir: string, peerId: string, addrs: string[] }
let provider: { dataDir: string, peerId: string, addrs: string[] }
let jobId = ''
const SLOW_TASKS = 12
const FAILING = 2 // the task index whose input makes the module exit 3

test.before(async () => {
  // info level: the start line is an info record (the sandbox's default is warn)
  submitter = await sb.startNode('submitter', ['--location', 'Paris', '--log-level', 'info'])
  provider = await sb.startNode('p1', ['--location', 'Berlin', '--bootstrap', submitter.addrs[0], '--log-level', 'info'])
})

test('`dbc node logs` prints the node\'s start line from logs/node.log (a link to the newest rolled file)', () => {
  const dir = join(submitter.dataDir, 'logs')
  assert.ok(lstatSync(join(dir, 'node.log')).isSymbolicLink(), 'node.log is a link to the newest file')
  assert.ok(existsSync(join(dir, 'node.1.log')))
  const r = dbc(['--data-dir', submitter.dataDir, 'node', 'logs', '--lines', '500'])
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO\s+node started {2}addrs=/m)
  assert.not.match(r.stdout, /"msg"/) // pretty, not JSON
  const json = dbc(['--data-dir', submitter.dataDir, 'node', 'logs', '--json', '--lines', '500'])
  const started = json.stdout.trim().split('\n').map(l => JSON.parse(l) as { msg?: string, addrs?: string[] }).find(x => x.msg === 'node started')
  assert.ok(started !== undefined && (started.addrs?.length ?? 0) > 0)
  const few = dbc(['--data-dir', submitter.dataDir, 'node', 'logs', '-n', '2'])
  assert.is(few.stdout.trim().split('\n').length, 2)
  // a data dir without a node: a clear error, no stack
  const none = dbc(['--data-dir', join(sb.root, 'nothing-here'), 'node', 'logs'])
  assert.is(none.code, 1)
  assert.match(none.stderr, /no node log in/)
})

test('`dbc job logs --follow` started while the job runs sees its events, each task\'s stderr and the end', async () => {
  const inputs = Array.from({ length: SLOW_TASKS }, (_, i) => i === FAILING ? 'fail: disk on fire\u001b[2J' : `slow: task number ${i}\u001b]0;pwned\u0007`)
  const manifest = {
    name: 'logs-e2e',
    executor: 'wasm',
    code: { wasm: join(repoRoot, 'src/compute/modules/wasi-log.wasm') },
    entry: '_start',
    inputs: { list: inputs },
    resources: { cores: 1, memoryMib: 64 },
    verification: { mode: 'off', redundancy: 1 },
    budget: { maxPricePerHour: 5 },
    task: { inputEncoding: 'utf8', timeoutMs: 120_000, expectedMs: 1000, maxAttempts: 1 }
  }
  const api = ApiClient.connect(submitter.dataDir)
  ;({ jobId } = await api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: repoRoot }))
  // the API's follow stream, opened at once: its first event arrives while the job still runs
  const streamed: Array<{ type: string, event?: { kind: string, index?: number, log?: { text: string } }, status?: string }> = []
  let runningAtFirstEvent: string | undefined
  const streaming = (async () => {
    for await (const m of api.stream<typeof streamed[number]>('GET', `/v1/jobs/${jobId}/logs/follow`)) {
      if (streamed.length === 0) runningAtFirstEvent = (await api.call<{ status: string }>('GET', `/v1/jobs/${jobId}`)).status
      streamed.push(m)
    }
  })()
  // and the CLI's, started as a person would right after submitting
  const cli = spawn(process.execPath, [dbcBin, '--data-dir', submitter.dataDir, 'job', 'logs', jobId, '--follow'], { cwd: repoRoot })
  let out = ''; let err = ''
  let cliAttachedWhile: string | undefined
  cli.stdout.on('data', (d: Buffer) => {
    if (out === '') void api.call<{ status: string }>('GET', `/v1/jobs/${jobId}`).then(s => { cliAttachedWhile ??= s.status })
    out += d.toString()
  })
  cli.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise<number | null>(resolve => {
    const t = setTimeout(() => cli.kill('SIGKILL'), 300_000)
    cli.on('close', c => { clearTimeout(t); resolve(c) })
  })
  await streaming
  assert.is(code, 0, err)
  assert.is(runningAtFirstEvent, 'running', 'the follow stream attached after the job ended')
  console.log(`  (the CLI's --follow attached while the job was ${cliAttachedWhile ?? '?'})`)
  // the API stream: every task returned, with its log, then the end
  const returned = streamed.filter(m => m.event?.kind === 'returned')
  assert.is(returned.length, SLOW_TASKS, out)
  assert.ok(returned.every(m => (m.event?.log?.text ?? '').startsWith('wasi-log: read ')))
  assert.is(streamed.at(-1)?.type, 'end')
  assert.is(streamed.at(-2)?.event?.kind, 'ended')
  // the CLI's: events in order, each task's stderr under it, labelled, the job's end last
  const lines = out.trimEnd().split('\n')
  assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} {2}job submitted$/)
  assert.match(lines.at(-1) ?? '', new RegExp(`job (finished|failed): ${SLOW_TASKS - 1} task\\(s\\) done, 1 failed$`))
  const peers = [submitter.peerId, provider.peerId].map(p => `${p.slice(0, 8)}…${p.slice(-6)}`)
  const placed = out.match(/task 5 copy \d+ placed on (\S+)/)
  assert.ok(placed !== null && peers.includes(placed[1]), `task 5 placed on a known peer: ${placed?.[1] ?? 'not at all'}`)
  assert.match(out, /task 5 copy \d+ (agreed|unverified) on \S+ after [\d.]+ s\n {2}--- stderr of task 5 copy \d+ on \S+, \d+ bytes\n {2}task 5\.\d+ \| wasi-log: read \d+ bytes\n {2}task 5\.\d+ \| spun to \d+\n {2}task 5\.\d+ \| slow: task number 5\n/)
  assert.match(out, new RegExp(`task ${FAILING} copy \\d+ failed on \\S+ after [\\d.]+ s: TASK_EXIT_CODE: .*exited with code 3: .*disk on fire`))
  assert.match(out, new RegExp(`task ${FAILING}\\.\\d+ \\| fail: disk on fire\\n`))
  assert.match(out, new RegExp(`task ${FAILING} failed: `))
  assert.not.match(out, /\u001b|\u0007/, 'escape sequences from tasks reached the terminal')
})

test('`dbc job logs J` after the end prints the same history; --json carries the raw text', async () => {
  const r = await dbcAsync(['--data-dir', submitter.dataDir, 'job', 'logs', jobId], { timeoutMs: 120_000 })
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /task 7\.\d+ \| slow: task number 7\n/)
  assert.match(r.stdout, new RegExp(`job (finished|failed): ${SLOW_TASKS - 1} task\\(s\\) done, 1 failed\n$`))
  assert.not.match(r.stdout, /\u001b/)
  const j = JSON.parse(dbc(['--data-dir', submitter.dataDir, 'job', 'logs', jobId, '--json']).stdout) as { events: Array<{ kind: string, index?: number, log?: { text: string, bytes: number, truncated: boolean } }> }
  const failed = j.events.find(e => e.kind === 'returned' && e.index === FAILING)
  assert.is(failed?.log?.text, 'wasi-log: read 22 bytes\nfail: disk on fire\u001b[2J')
  assert.is(failed?.log?.truncated, false)
  const unknown = dbc(['--data-dir', submitter.dataDir, 'job', 'logs', 'f'.repeat(64)])
  assert.is(unknown.code, 1)
  assert.not.match(unknown.stderr, /at .*\.ts:\d+/)
})

test.after(async () => { await sb.cleanup() })
test.run()
