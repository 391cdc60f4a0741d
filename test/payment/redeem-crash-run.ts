// The payment crash scenario: one payer and two providers as OS processes on one anvil
// (redeem-crash-child.ts), killed with SIGKILL again and again (`kills` times in all) at random
// moments or at the fault points of the flow (payer: after signing a voucher / after sending
// it; provider: after writing its redeem tx down / after broadcasting it), each restarted at
// once on its data dir. At the end every amount must be paid exactly once: per job and
// provider, the Redeemed events add up to the final signed cumulative, never more.
import * as assert from 'uvu/assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { privateKeyToAddress } from 'viem/accounts'
import { Bridge, DEV_PRIVATE_KEYS, chainJobIdOf, settlementAbi, startAnvil, type Hex } from '../../src/chain/index.js'
import { openStore } from '../../src/store/db.js'

const childPath = fileURLToPath(new URL('./redeem-crash-child.ts', import.meta.url))
const UNIT = 10n ** 15n

export interface CrashOptions { kills: number, seed?: number, steps?: number, jobs?: number }
export interface CrashReport { kills: Array<{ victim: string, mode: string }>, seconds: number, redeemTxs: number }

interface Proc { child: ChildProcess, ready: Promise<boolean>, exited: Promise<void>, lines: Array<Record<string, any>>, stderr: () => string }

export async function runPaymentCrash (opts: CrashOptions): Promise<CrashReport> {
  const started = Date.now()
  let seed = opts.seed ?? (Date.now() % 100_000)
  const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  const steps = opts.steps ?? 40
  const jobCount = opts.jobs ?? 2
  const providers = 2
  const anvil = await startAnvil()
  const dir = mkdtempSync(join(tmpdir(), 'dbc-paycrash-'))
  const readerStore = openStore(join(dir, 'reader.sqlite'))
  const reader = new Bridge({ store: readerStore, dataDir: join(dir, 'reader'), chain: { kind: 'rpc', url: anvil.url, chainId: 19880818 }, privateKey: DEV_PRIVATE_KEYS[9], confirmations: 1, tickMs: 0 })
  const live = new Set<ChildProcess>()
  const errors: string[] = []
  const kills: CrashReport['kills'] = []
  try {
    await reader.start()
    const contract = await reader.ready()
    const env = { DBC_TEST_CONTRACT: contract, CRASH_STEPS: String(steps), CRASH_JOBS: String(jobCount), CRASH_PROVIDERS: String(providers) }

    const spawnRole = (role: string, index: string, killAt: string): Proc => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', childPath, role, dir, anvil.url, index], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, CRASH_KILL_AT: killAt } })
      live.add(child)
      const lines: Array<Record<string, any>> = []
      let err = ''
      let buf = ''
      let onReady: (ok: boolean) => void = () => {}
      const ready = new Promise<boolean>(resolve => { onReady = resolve })
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString()
        const parts = buf.split('\n')
        buf = parts.pop() ?? ''
        for (const l of parts) {
          if (!l.startsWith('{')) continue
          const o = JSON.parse(l) as Record<string, any>
          lines.push(o)
          if (o.ready !== undefined) onReady(true)
          if (o.error !== undefined) errors.push(`${role}${index}: ${String(o.error)}`)
        }
      })
      child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
      const exited = new Promise<void>(resolve => child.once('close', () => { live.delete(child); onReady(false); resolve() }))
      return { child, ready, exited, lines, stderr: () => err }
    }

    let budget = opts.kills
    let payerDone = false
    const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
    // One loop per victim, all at once: start, (maybe) kill, restart, until the budget is spent.
    const victim = async (role: 'payer' | 'provider', index: string, hooks: string[]): Promise<void> => {
      const name = role === 'payer' ? 'payer' : `provider-${index}`
      for (let round = 0; ; round++) {
        if (budget <= 0 || (role === 'payer' && payerDone)) return
        budget--
        // Every third round a timed kill; the others at a fault point (timed if it is not reached).
        const hook = round % 3 === 2 || (role === 'provider' && payerDone) ? '' : hooks[round % hooks.length]
        const p = spawnRole(role, index, hook)
        const ok = await p.ready
        if (!ok && p.lines.some(l => l.killedAt !== undefined)) { kills.push({ victim: name, mode: String(p.lines.find(l => l.killedAt !== undefined)?.killedAt) }); continue }
        if (!ok) throw new Error(`${name} exited before it was ready: ${p.stderr().slice(-800)}`)
        const waitMs = hook === '' ? Math.floor(rand() * 1500) : 8000
        const t = setTimeout(() => p.child.kill('SIGKILL'), waitMs)
        await p.exited
        clearTimeout(t)
        if (p.lines.some(l => l.done !== undefined)) { payerDone = true; budget++; return }
        const self = p.lines.find(l => l.killedAt !== undefined)
        kills.push({ victim: name, mode: self !== undefined ? String(self.killedAt) : `timer${hook === '' ? '' : ` (${hook} not reached)`}` })
        await sleep(Math.floor(rand() * 200))
      }
    }
    await Promise.all([
      victim('payer', '0', ['afterSign', 'afterSend']),
      ...Array.from({ length: providers }, async (_, i) => await victim('provider', String(i), ['beforeBroadcast', 'afterBroadcast']))
    ])

    // The last lives: the payer runs to its end; the providers redeem everything signed.
    const finalProviders = Array.from({ length: providers }, (_, i) => spawnRole('provider', String(i), ''))
    if (!payerDone) {
      const p = spawnRole('payer', '0', '')
      await p.exited
      assert.ok(p.lines.some(l => l.done !== undefined), `the payer did not finish: ${p.stderr().slice(-800)}`)
    }
    const jobs = Array.from({ length: jobCount }, (_, j) => chainJobIdOf(`crash-job-${j}`, privateKeyToAddress(DEV_PRIVATE_KEYS[0])))
    const addr = (i: number): Hex => privateKeyToAddress(DEV_PRIVATE_KEYS[1 + i]).toLowerCase() as Hex
    const owed = (i: number): bigint => UNIT * BigInt(i + 1) * BigInt(steps)
    const deadline = Date.now() + 120_000
    for (;;) {
      let all = true
      for (const j of jobs) for (let i = 0; i < providers; i++) if (await reader.redeemed(j, addr(i)) < owed(i)) all = false
      if (all || Date.now() > deadline) break
      await sleep(200)
    }
    for (const p of finalProviders) p.child.kill('SIGKILL')
    await Promise.all(finalProviders.map(async p => await p.exited))
    assert.equal(errors, [], 'no process reported an error')

    const events = await reader.connectionInfo.publicClient.getContractEvents({ address: contract, abi: settlementAbi, eventName: 'Redeemed', fromBlock: 0n })
    const payerStore = openStore(join(dir, 'payer', 'node.sqlite'))
    try {
      for (const j of jobs) {
        let paid = 0n
        for (let i = 0; i < providers; i++) {
          const mine = events.filter(e => e.args.escrowId === j && e.args.provider?.toLowerCase() === addr(i))
          const sum = mine.reduce((s, e) => s + (e.args.amount ?? 0n), 0n)
          assert.ok(mine.every(e => (e.args.amount ?? 0n) > 0n), 'no empty Redeemed events')
          assert.is(sum, owed(i), `job ${j.slice(0, 10)} provider ${i}: the Redeemed events add up to the final signed total`)
          assert.is(await reader.redeemed(j, addr(i)), owed(i))
          const issued = payerStore.db.prepare('SELECT cumulative FROM chain_vouchers_issued WHERE chain_job_id = ? AND provider = ?').get(j, addr(i)) as { cumulative: string }
          assert.is(BigInt(issued.cumulative), owed(i), 'the payer\'s final voucher is what it owed, no more')
          paid += sum
        }
        const esc = await reader.escrow(j, { fresh: true })
        assert.is(esc.paid, paid, 'the escrow paid exactly what the events say')
      }
      // Nothing above the owed total was ever sent.
      for (let i = 0; i < providers; i++) {
        const box = join(dir, `mailbox-${i}.jsonl`)
        const sent = existsSync(box) ? readFileSync(box, 'utf8').split('\n').filter(l => l.startsWith('{')).map(l => BigInt((JSON.parse(l) as { voucher: { cumulative: string } }).voucher.cumulative)) : []
        assert.ok(sent.every(c => c <= owed(i)), `provider ${i} never received more than it was owed`)
      }
    } finally {
      payerStore.close()
    }
    assert.is(kills.length, opts.kills, `killed ${opts.kills} times`)
    assert.ok(kills.some(k => k.victim === 'payer'), 'the payer was killed')
    assert.ok(kills.some(k => k.victim.startsWith('provider')), 'the providers were killed')
    const redeemTxs = new Set(events.map(e => e.transactionHash)).size
    return { kills, seconds: (Date.now() - started) / 1000, redeemTxs }
  } finally {
    for (const c of live) c.kill('SIGKILL')
    await reader.stop().catch(() => {})
    readerStore.close()
    await anvil.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
