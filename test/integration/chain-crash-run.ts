// Runs the crash scenario for the chain crash tests: a bridge child process killed with
// SIGKILL at a fault point, then a restarted one; asserts exactly one settlement.
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const child = fileURLToPath(new URL('./chain-crash-child.ts', import.meta.url))

interface ChildRun { code: number | null, signal: string | null, lines: Array<Record<string, unknown>>, stderr: string }

export async function runChild (args: string[], env: Record<string, string> = {}): Promise<ChildRun> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', child, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
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


/** kind: 'embedded' or an anvil URL's owner ('anvil'); fault: 'afterBroadcast' | 'beforeBroadcast'. */
export async function crashAndResume (kind: 'embedded' | 'anvil', fault: string, anvilUrl: string, env: Record<string, string> = {}): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'dbc-crash-'))
    const chainArg = kind === 'embedded' ? 'embedded' : anvilUrl
    const crashed = await runChild(['crash', dir, chainArg, fault], env)
    assert.is(crashed.signal, 'SIGKILL', `child was not killed: ${crashed.stderr.slice(-600)} ${JSON.stringify(crashed.lines)}`)
    const killed = crashed.lines.find(l => l.killedAt !== undefined)
    assert.ok(killed, 'the fault point printed its batch')
    const resumed = await runChild(['resume', dir, chainArg, fault], env)
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
  rmSync(dir, { recursive: true, force: true })
}
