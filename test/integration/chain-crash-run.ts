// Runs the crash scenario for the chain crash tests: a provider process killed with SIGKILL at a
// fault point of its redeem, then a restarted one; asserts every voucher paid exactly once.
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const child = fileURLToPath(new URL('./chain-crash-child.ts', import.meta.url))

interface ChildRun { code: number | null, signal: string | null, lines: Array<Record<string, any>>, stderr: string }

export async function runChild (args: string[], env: Record<string, string> = {}): Promise<ChildRun> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', child, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    let out = ''; let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`child timed out: ${err}`)) }, 90_000)
    p.on('close', (code, signal) => {
      clearTimeout(t)
      resolve({ code, signal, stderr: err, lines: out.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>) })
    })
  })
}

/** kind: 'embedded' or 'anvil' (at anvilUrl); fault: 'afterBroadcast' | 'beforeBroadcast'. */
export async function crashAndResume (kind: 'embedded' | 'anvil', fault: string, anvilUrl: string, env: Record<string, string> = {}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-crash-'))
  try {
    const chainArg = kind === 'embedded' ? 'embedded' : anvilUrl
    const crashed = await runChild(['crash', dir, chainArg, fault], env)
    assert.is(crashed.signal, 'SIGKILL', `child was not killed: ${crashed.stderr.slice(-600)} ${JSON.stringify(crashed.lines)}`)
    const killed = crashed.lines.find(l => l.killedAt !== undefined)
    assert.ok(killed, 'the fault point printed its redeem')
    const resumed = await runChild(['resume', dir, chainArg, fault], env)
    assert.is(resumed.code, 0, resumed.stderr.slice(-800))
    const r = resumed.lines[0] as { before: Array<{ id: number, state: string, txHash: string }>, after: Array<{ id: number, state: string, txHash: string }>, redeemed: Array<{ jobId: string, amount: string, txHash: string }>, onChain: string[], owed: string[], jobs: string[], redeems: Record<string, number> }
    // Before the restart the outbox held the redeem as sent, with the tx hash the fault saw.
    assert.equal(r.before, [{ id: killed.id, state: 'sent', txHash: killed.txHash }])
    assert.equal(r.after, [{ id: killed.id, state: 'confirmed', txHash: killed.txHash }], 'confirmed by the very tx written down before the crash')
    for (let i = 0; i < r.jobs.length; i++) {
      const paid = r.redeemed.filter(e => e.jobId === r.jobs[i])
      assert.is(paid.length, 1, `exactly one Redeemed event for job ${i}`)
      assert.is(paid[0].amount, r.owed[i], 'paid the signed total, once')
      assert.is(paid[0].txHash, killed.txHash)
      assert.is(r.onChain[i], r.owed[i])
    }
    assert.equal(r.redeems, { sent: 0, confirmed: 1, dropped: 0 })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
