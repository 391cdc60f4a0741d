// Exactly once across a crash: a bridge process is killed with SIGKILL right after it
// broadcast a settlement (before confirming it), or right after writing it down (before the
// broadcast); a restarted bridge on the same data dir ends with exactly one settlement on
// chain and a clean outbox. Against anvil and against the embedded EVM (whose chain state
// lives in the killed process's data dir).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startAnvil, type AnvilHandle } from '../../src/chain/index.js'

const child = fileURLToPath(new URL('./chain-crash-child.ts', import.meta.url))

interface ChildRun { code: number | null, signal: string | null, lines: Array<Record<string, unknown>>, stderr: string }

async function runChild (args: string[]): Promise<ChildRun> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''; let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`child timed out: ${err}`)) }, 60_000)
    p.on('close', (code, signal) => {
      clearTimeout(t)
      resolve({ code, signal, stderr: err, lines: out.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>) })
    })
  })
}

let anvil: AnvilHandle
const dirs: string[] = []
test('setup anvil', async () => { anvil = await startAnvil() })

const cases: Array<[string, string]> = [['anvil', 'afterBroadcast'], ['embedded', 'afterBroadcast'], ['anvil', 'beforeBroadcast']]
for (const [kind, fault] of cases) {
  test(`[${kind}] kill -9 at ${fault}, restart: exactly one settlement, clean outbox`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbc-crash-'))
    dirs.push(dir)
    const chainArg = kind === 'embedded' ? 'embedded' : anvil.url
    const crashed = await runChild(['crash', dir, chainArg, fault])
    assert.is(crashed.signal, 'SIGKILL', `child was not killed: ${crashed.stderr.slice(-600)} ${JSON.stringify(crashed.lines)}`)
    const killed = crashed.lines.find(l => l.killedAt !== undefined)
    assert.ok(killed, 'the fault point printed its batch')
    const resumed = await runChild(['resume', dir, chainArg, fault])
    assert.is(resumed.code, 0, resumed.stderr.slice(-800))
    const r = resumed.lines[0] as { before: Array<{ batchId: string, state: string, txHash: string }>, after: Array<{ batchId: string, state: string, txHash: string }>, settledEvents: Array<{ batchId: string, txHash: string }>, providerPaidEvents: number, credited: string[], outbox: Record<string, number>, pendingReceipts: number }
    // Before the restart the outbox held the batch as sent, with the tx hash the fault saw.
    assert.equal(r.before, [{ batchId: killed.batchId, state: 'sent', txHash: killed.txHash }])
    assert.equal(r.after.map(a => a.state), ['confirmed'])
    const forBatch = r.settledEvents.filter(e => e.batchId === killed.batchId)
    assert.is(forBatch.length, 1, 'exactly one BatchSettled for the batch')
    assert.is(forBatch[0].txHash, killed.txHash, 'settled by the very tx written down before the crash')
    assert.is(r.providerPaidEvents, 4)
    assert.equal(r.credited, ['5000000000000000', '5000000000000000', '5000000000000000', '5000000000000000'], 'each provider paid once for its 5 receipts')
    assert.equal(r.outbox, { built: 0, sent: 0, confirmed: 1, conflict: 0 })
    assert.is(r.pendingReceipts, 0)
  })
}

test('teardown', async () => {
  await anvil.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

test.run()
