// The processes of the payment crash test, each killed with SIGKILL and restarted many times:
//
//   payer DIR URL    the submitter's side: deposits escrow for each job (once), then step by step
//                    signs each provider a higher cumulative voucher (Bridge.signVoucher records
//                    it before it leaves) and "sends" it by appending it to the provider's mailbox
//                    file. On start it resends the latest voucher it signed to every provider.
//   provider DIR URL I  a provider (dev key I): stakes once, reads its mailbox, hands every voucher
//                    to acceptVoucher; its redeem loop pays them out.
//
// Env: DBC_TEST_CONTRACT (the Settlement address), CRASH_KILL_AT (a fault point at which the
// process kills itself: afterSign | afterSend | beforeBroadcast | afterBroadcast), CRASH_STEPS,
// CRASH_JOBS, CRASH_PROVIDERS. Prints JSON lines: {ready}, {killedAt}, {done}, {error}.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeSync } from 'node:fs'
import { privateKeyToAddress } from 'viem/accounts'
import { join } from 'node:path'
// Imported from their modules, not the index: a lighter start-up (no embedded EVM), restarts are many.
import { Bridge } from '../../src/chain/bridge.js'
import { chainJobIdOf, jobHashOf } from '../../src/chain/job-id.js'
import { DEV_PRIVATE_KEYS } from '../../src/chain/dev-keys.js'
import type { Hex } from '../../src/chain/config.js'
import type { SignedVoucher } from '../../src/core/settlement/voucher.js'
import { openStore } from '../../src/store/db.js'

const [role, dir, url, index] = process.argv.slice(2)
const contract = process.env.DBC_TEST_CONTRACT as Hex
const killAt = process.env.CRASH_KILL_AT ?? ''
const STEPS = Number(process.env.CRASH_STEPS ?? 30)
const JOBS = Number(process.env.CRASH_JOBS ?? 2)
const PROVIDERS = Number(process.env.CRASH_PROVIDERS ?? 2)
const UNIT = 10n ** 15n
const ROOT: Hex = `0x${'44'.repeat(32)}`

const say = (o: Record<string, unknown>): void => { writeSync(1, JSON.stringify(o) + '\n') }
const die = (point: string, extra: Record<string, unknown> = {}): void => {
  if (killAt !== point) return
  say({ killedAt: point, ...extra })
  process.kill(process.pid, 'SIGKILL')
}
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
// escrows are keyed by payer and job: the payer is dev key 0
const jobs = Array.from({ length: JOBS }, (_, j) => chainJobIdOf(`crash-job-${j}`, privateKeyToAddress(DEV_PRIVATE_KEYS[0])))
const mailbox = (p: number): string => join(dir, `mailbox-${p}.jsonl`)
const providerKey = (p: number): Hex => DEV_PRIVATE_KEYS[1 + p]
/** What the payer owes provider p per step (providers differ, so mix-ups show). */
const perStep = (p: number): bigint => UNIT * BigInt(p + 1)
const addr = (p: number): Hex => privateKeyToAddress(providerKey(p)).toLowerCase() as Hex

function open (name: string, key: Hex, init: Record<string, unknown> = {}): Bridge {
  mkdirSync(join(dir, name), { recursive: true })
  const store = openStore(join(dir, name, 'node.sqlite'))
  return new Bridge({ store, dataDir: join(dir, name), chain: { kind: 'rpc', url, chainId: 19880818 }, privateKey: key, contract, confirmations: 1, tickMs: 0, requestTimeoutMs: 10_000, ...init })
}

function send (p: number, sv: SignedVoucher): void {
  appendFileSync(mailbox(p), JSON.stringify({ ...sv, voucher: { ...sv.voucher, cumulative: sv.voucher.cumulative.toString() } }) + '\n')
}

async function payer (): Promise<void> {
  const bridge = open('payer', DEV_PRIVATE_KEYS[0])
  await bridge.start()
  for (const [n, j] of jobs.entries()) {
    const esc = await bridge.escrow(j, { fresh: true })
    if (/^0x0{40}$/i.test(esc.payer)) await bridge.deposit(jobHashOf(`crash-job-${n}`), 10n ** 18n)
  }
  // A restarted payer first resends what it signed last: it may have died before sending it.
  for (let p = 0; p < PROVIDERS; p++) for (const j of jobs) {
    const last = bridge.vouchers.latestIssued(j, addr(p))
    if (last !== undefined) send(p, last)
  }
  say({ ready: 'payer' })
  let signed = 0
  for (let s = 1; s <= STEPS; s++) {
    for (let p = 0; p < PROVIDERS; p++) {
      for (const j of jobs) {
        const total = perStep(p) * BigInt(s)
        const last = bridge.vouchers.latestIssued(j, addr(p))
        if (last !== undefined && last.voucher.cumulative >= total) continue
        const sv = await bridge.signVoucher({ escrowId: j, provider: addr(p), cumulative: total, receiptsRoot: ROOT, receiptCount: s })
        signed++
        if (signed % 3 === 0) die('afterSign', { step: s })
        send(p, sv)
        if (signed % 3 === 0) die('afterSend', { step: s })
      }
    }
    await sleep(60)
  }
  say({ done: 'payer' })
  await bridge.stop()
}

async function provider (p: number): Promise<void> {
  const bridge = open(`provider-${p}`, providerKey(p), {
    tickMs: 150,
    beforeBroadcast: () => { die('beforeBroadcast') },
    afterBroadcast: () => { die('afterBroadcast') }
  })
  await bridge.start()
  if ((await bridge.stakeOf()).gpus === 0) await bridge.stake(1)
  say({ ready: `provider-${p}` })
  let offset = 0
  for (;;) {
    const text = existsSync(mailbox(p)) ? readFileSync(mailbox(p), 'utf8') : ''
    const lines = text.slice(offset).split('\n')
    // The last piece may be a line still being written: read it next time.
    const complete = lines.slice(0, -1)
    offset += complete.reduce((n, l) => n + l.length + 1, 0)
    for (const line of complete) {
      let raw: { voucher: { escrowId: Hex, provider: Hex, cumulative: string, receiptsRoot: Hex, receiptCount: number }, signature: Hex }
      try { raw = JSON.parse(line) } catch { continue }
      const r = await bridge.acceptVoucher({ voucher: { ...raw.voucher, cumulative: BigInt(raw.voucher.cumulative) }, signature: raw.signature })
      if (!r.ok && r.code !== 'STALE') say({ error: `voucher refused: ${r.code} ${r.reason}` })
    }
    await sleep(50)
  }
}

try {
  if (role === 'payer') await payer()
  else await provider(Number(index))
} catch (err) {
  say({ error: (err as Error).stack ?? String(err) })
  process.exit(1)
}
