// `dbc chain status`, `dbc wallet`, `dbc stake GPUS`, `dbc earnings`, `dbc job settle JOB`
import type { Command } from 'commander'
import { DbcError, DaemonUnavailableError } from '../errors.js'
import type { ApiClient } from '../api/client.js'
import { printJson, formatDbc } from './output.js'
import { clientOf, dataDirOf } from './context.js'

async function format (): Promise<typeof import('../chain/format.js')> {
  return await import('../chain/format.js')
}

/** Turns decimal strings of wei back into bigints for the formatters. */
function big (v: any): any {
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v)
  if (Array.isArray(v)) return v.map(big)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'txHash' || k === 'chainJobId' || k === 'signature' || k === 'receiptsRoot' ? x : big(x)]))
  return v
}

/** The running node's API client; undefined when no node runs with this data dir (the stored figures are read then). */
async function clientOrStopped (cmd: Command): Promise<ApiClient | undefined> {
  try { return await clientOf(cmd) } catch (err) {
    if (err instanceof DaemonUnavailableError) return undefined
    throw err
  }
}

/** Bigints as decimal strings (what the API's JSON carries). */
function jsonBig (v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return v.map(jsonBig)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonBig(x)]))
  return v
}

const noEscrow = (v: Record<string, any>): boolean => /^0x0{40}$/i.test(String(v.payer))

/**
 * Why `dbc job settle --close/--refund` cannot do it now (from the job's payment view, before any
 * transaction), or undefined. A refund comes after min(deadline, close) + the dispute window.
 */
export function settleRefusal (id: string, v: Record<string, any>, want: { close: boolean, refund: boolean }, nowSec: number): DbcError | undefined {
  if (noEscrow(v)) return new DbcError('NO_ESCROW', `this node's account deposited no escrow for job ${id}: nothing to close or refund`, { hint: '`dbc job settle` acts on jobs this node submitted; as a provider, see `dbc earnings`' })
  if (want.refund) {
    if (v.refunded === true) return new DbcError('ALREADY_REFUNDED', `the escrow of job ${id} was refunded already`, { hint: `\`dbc job settle ${id}\` shows it` })
    if (v.refundable !== true && String(v.refundAmount) === '0') return new DbcError('NOTHING_TO_REFUND', `the escrow of job ${id} has nothing unspent to refund`)
    const at = Number(v.refundableAt)
    if (v.refundable !== true && Number.isFinite(at) && at > nowSec) {
      return new DbcError('REFUND_NOT_YET', `the escrow of job ${id} is refundable from ${new Date(at * 1000).toISOString()} (in ${formatWait(at - nowSec)}): until then its providers may redeem what was signed to them`, { hint: `run \`dbc job settle ${id} --refund\` then` })
    }
    if (v.refundable !== true && Number(v.closedAt) === 0) return new DbcError('REFUND_NOT_YET', `job ${id} is not closed, and its deadline has not passed: the refund clock has not started`, { hint: `close it first: \`dbc job settle ${id} --close\` (then refund after the dispute window)` })
  }
  return undefined
}

/**
 * What `dbc earnings --redeem` did (the redeem pass's RedeemTick): it printed only the table, the
 * same with or without the flag, so a redeem that sent nothing looked like one that did.
 */
export function redeemSummary (t: Record<string, any>): string {
  const n = (v: unknown): number => Array.isArray(v) ? v.length : Number.isFinite(Number(v)) ? Number(v) : 0
  const parts: string[] = []
  const confirmed = Array.isArray(t.confirmed) ? t.confirmed : []
  if (confirmed.length > 0) parts.push(`${confirmed.length} redeem transaction(s) confirmed (${confirmed.map((c: any) => String(c?.txHash)).join(', ')})`)
  if (t.inFlight != null) parts.push(`a redeem transaction is on its way (${String(t.inFlight.txHash)})`)
  if (n(t.notWorth) > 0) parts.push(`${n(t.notWorth)} voucher(s) pay less than one redeem's gas: not sent`)
  if (n(t.waiting) > 0) parts.push(`${n(t.waiting)} voucher(s) wait to grow`)
  if (n(t.blocked) > 0) parts.push(`${n(t.blocked)} voucher(s) cannot be redeemed`)
  if (parts.length === 0) return 'redeem: nothing pending to redeem'
  return `redeem: ${confirmed.length === 0 && t.inFlight == null ? 'nothing sent; ' : ''}${parts.join('; ')} (each job's note below says why)`
}

function formatWait (s: number): string {
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  return `${(s / 3600).toFixed(1)} h`
}

export function registerChainCommands (program: Command): void {
  const chain = program.command('chain').description('the settlement chain this node uses')
  chain.command('status')
    .description('chain id, block, contract, this node\'s account and the settlement outbox')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const s = await (await clientOf(cmd)).call<Record<string, any>>('GET', '/v1/chain/status')
      if (opts.json === true) return printJson(s)
      process.stdout.write((await format()).chainStatusLines(big(s)).join('\n') + '\n')
    })

  program.command('wallet')
    .description('this node\'s account on the chain: address, balance, stake')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const client = await clientOrStopped(cmd)
      if (client === undefined) {
        const w = await (await import('./stored-earnings.js')).storedWallet(dataDirOf(cmd))
        if (opts.json === true) return printJson({ account: w.account, running: false, source: w.source })
        process.stdout.write(`${w.source}\naddress      ${w.account ?? '-'}\n`)
        return
      }
      const s = await client.call<Record<string, any>>('GET', '/v1/wallet')
      if (opts.json === true) return printJson(s)
      process.stdout.write((await format()).walletLines(big(s)).join('\n') + '\n')
      if (s.reachable !== true && s.lastError != null) process.stdout.write(`chain unreachable: ${String(s.lastError.message)}\n`)
    })

  program.command('earnings')
    .description('what this node earned as a provider, per job: signed by the payer, redeemed on chain, pending')
    .option('--json', 'print JSON')
    .option('--redeem', 'redeem now what is pending and pays more than its gas, instead of waiting for the loop (which waits until a voucher pays 10x its gas or the job closes)')
    .action(async (opts, cmd: Command) => {
      const client = await clientOrStopped(cmd)
      if (client === undefined) {
        // a stopped node: what its store holds (a redeem needs the running node)
        if (opts.redeem === true) throw new DbcError('DAEMON_NOT_RUNNING', `no dbc node is running with data dir ${dataDirOf(cmd)}: redeeming sends a transaction from the running node`, { hint: 'start it (`dbc node start --detach`), then run `dbc earnings --redeem`; `dbc earnings` alone shows the stored figures' })
        const stored = (await import('./stored-earnings.js')).storedEarnings(dataDirOf(cmd))
        if (opts.json === true) return printJson({ ...(jsonBig(stored) as Record<string, unknown>), running: false })
        process.stdout.write([stored.source, ...(await format()).earningsLines({ ...stored, account: (stored.account ?? 'unknown') as never, chainId: stored.chainId ?? 0, contract: stored.contract as never, balance: 0n, stake: undefined }, { wallet: false })].join('\n') + '\n')
        return
      }
      const tick = opts.redeem === true ? await client.call<Record<string, any>>('POST', '/v1/chain/redeem', undefined, { timeoutMs: 60_000 }) : undefined
      const e = await client.call<Record<string, any>>('GET', '/v1/earnings')
      if (opts.json === true) return printJson(e)
      process.stdout.write([...(tick !== undefined ? [redeemSummary(tick)] : []), ...(await format()).earningsLines(big(e))].join('\n') + '\n')
    })

  program.command('stake')
    .description('stake for GPUS GPUs (100,000 DBC per GPU for the network\'s first 10,000 GPUs, less after)')
    .argument('<gpus>', 'number of GPUs')
    .option('--quote', 'only show what it would cost')
    .option('--json', 'print JSON')
    .action(async (gpus: string, opts, cmd: Command) => {
      const n = Number(gpus)
      if (!Number.isInteger(n) || n < 1 || n > 20_000) throw new DbcError('BAD_ARGUMENT', `GPUS must be a whole number from 1 to 20000, not "${gpus}"`)
      const client = (await clientOf(cmd))
      const f = await format()
      if (opts.quote === true) {
        const q = await client.call<Record<string, any>>('GET', `/v1/chain/stake-quote?gpus=${n}`)
        if (opts.json === true) return printJson(q)
        process.stdout.write(f.stakeQuoteLines(BigInt(q.networkGpus), n).join('\n') + '\n')
        return
      }
      const r = await client.call<Record<string, any>>('POST', '/v1/chain/stake', { gpus: n })
      if (opts.json === true) return printJson(r)
      process.stdout.write(f.stakeLines(big(r)).join('\n') + '\n')
    })

  const job = program.commands.find(c => c.name() === 'job')
  job?.command('settle')
    .description('the payments of a job you submitted: escrow on chain, what you signed per provider, what each redeemed, the refund')
    .argument('<job>', 'job id, or its first 16 digits as `dbc job list` prints them (or the 32-byte 0x chain job id)')
    .option('--close', 'close the job on chain now (no more work; starts the refund clock)')
    .option('--refund', 'take the unspent escrow back (after the dispute window)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts, cmd: Command) => {
      const client = (await clientOf(cmd))
      // a prefix of a job of this node (as `dbc job list` prints it); a 0x chain job id as given
      const { resolveJobId } = await import('./job-id.js')
      const path = `/v1/chain/jobs/${encodeURIComponent(await resolveJobId(client, id))}`
      const done: string[] = []
      // what the chain would refuse is said first, with no transaction sent (a refund before its
      // time reverted 'DisputeWindowOpen(0x…, 1796624465)'; a second close sent a transaction)
      const check = async (want: { close: boolean, refund: boolean }): Promise<Record<string, any>> => {
        const v = await client.call<Record<string, any>>('GET', path)
        const cannot = settleRefusal(id, v, want, Math.floor(Date.now() / 1000))
        if (cannot !== undefined) throw new DbcError(cannot.code, [...done, cannot.message].join('\n'), { hint: cannot.hint })
        return v
      }
      if (opts.close === true) {
        const before = await check({ close: true, refund: false })
        if (Number(before.closedAt) > 0) done.push(`already closed ${new Date(Number(before.closedAt) * 1000).toISOString()}: no transaction sent`)
        else done.push(`closed: tx ${String((await client.call<Record<string, any>>('POST', `${path}/close`, undefined, { timeoutMs: 120_000 })).txHash)}`)
      }
      if (opts.refund === true) {
        await check({ close: false, refund: true })
        const r = await client.call<Record<string, any>>('POST', `${path}/refund`, undefined, { timeoutMs: 120_000 })
        done.push(`refunded ${formatDbc(/^\d+$/.test(String(r.amount)) ? BigInt(r.amount) : r.amount)}: tx ${String(r.txHash)}`)
      }
      const v = await client.call<Record<string, any>>('GET', path)
      if (opts.json === true) return printJson(v)
      const lines = (await format()).jobPaymentLines(big(v), Math.floor(Date.now() / 1000))
      if (noEscrow(v)) lines.push(`this node's account ${String(v.account)} deposited no escrow for job ${id}: \`dbc job settle\` shows the jobs this node submitted (as a provider, see \`dbc earnings\`)`)
      process.stdout.write([...done, ...lines].join('\n') + '\n')
    })
}
