// Plain-text views for the CLI (`dbc chain status`, `dbc wallet`, `dbc stake`, `dbc earnings`,
// `dbc job settle`) and the demo. Pure: they take the Bridge's results and return lines.
import { formatCoins, stakeRequired } from '../core/settlement/index.js'
import type { BridgeStatus, EarningsView, JobPaymentView, StakeResult } from './types.js'

const coins = (wei: bigint | undefined): string => wei === undefined ? '-' : `${formatCoins(wei)} DBC`
const short = (h: string): string => `${h.slice(0, 10)}…${h.slice(-4)}`

export function chainStatusLines (s: BridgeStatus): string[] {
  const lines = [
    `chain      ${s.kind === 'embedded' ? 'embedded EVM (sandbox)' : s.url ?? 'rpc'} (chain id ${s.chainId})${s.reachable ? '' : '  UNREACHABLE'}`,
    `block      ${s.block?.toString() ?? '-'}`,
    `contract   ${s.contract ?? '-'}`,
    `account    ${s.account}`,
    `balance    ${coins(s.balance)}`,
    `vouchers   ${s.vouchers.received} held as a provider, ${s.vouchers.issued} signed as a payer`,
    `redeems    ${s.redeems.sent} in flight, ${s.redeems.confirmed} confirmed, ${s.redeems.dropped} dropped (replaced)`
  ]
  if (s.lastError !== undefined) lines.push(`error      ${s.lastError.message}${s.lastError.hint === undefined ? '' : `\n           hint: ${s.lastError.hint}`}`)
  return lines
}

export function walletLines (s: Pick<BridgeStatus, 'account' | 'balance' | 'stake'>): string[] {
  return [
    `address      ${s.account}`,
    `balance      ${coins(s.balance)}`,
    `staked       ${s.stake === undefined ? '-' : s.stake.gpus === 0 ? 'nothing (a provider must stake to redeem its vouchers: `dbc stake 1`)' : `${s.stake.gpus} GPU(s), ${coins(s.stake.amount)}`}`
  ]
}

/** What staking `gpus` costs on a network with `networkGpus` GPUs, by the seed's rule (offline). */
export function stakeQuoteLines (networkGpus: bigint | number, gpus: number): string[] {
  const n = BigInt(networkGpus)
  const amount = stakeRequired(n, gpus)
  return [`staking ${gpus} GPU(s) as GPU #${n + 1n}..#${n + BigInt(gpus)} costs ${coins(amount)} (${coins(amount / BigInt(gpus))} per GPU on average)`]
}

export function stakeLines (r: StakeResult): string[] {
  return [`staked ${r.gpus} GPU(s) for ${r.provider}: ${coins(r.amount)} (network now ${r.networkGpus} GPUs)`, `tx ${r.txHash}`]
}

/** `dbc earnings`: one line per job (signed, redeemed on chain, pending), then the totals. */
export function earningsLines (e: EarningsView, opts: { wallet?: boolean } = {}): string[] {
  const lines = [`provider ${e.account} on chain ${e.chainId}${e.contract === undefined ? '' : `, contract ${e.contract}`}`]
  if (e.jobs.length === 0) {
    lines.push('no vouchers yet: nothing signed to this node')
  } else {
    // a job by the id its submitter's `dbc job list` and this node's log print (16 digits); the chain job id when no lease named it
    lines.push(`${'job'.padEnd(17)} ${'signed'.padStart(24)} ${'redeemed'.padStart(24)} ${'pending'.padStart(24)}  ${'tasks'.padStart(6)}  receipts`)
    for (const j of e.jobs) {
      const name = j.jobId !== undefined ? j.jobId.slice(0, 16) : short(j.chainJobId)
      lines.push(`${name.padEnd(17)} ${coins(j.signed).padStart(24)} ${coins(j.redeemed).padStart(24)} ${coins(j.pending).padStart(24)}  ${(j.tasks === undefined ? '-' : String(j.tasks)).padStart(6)}  ${j.receiptCount}`)
      lines.push(`  chain job ${j.chainJobId}, payer ${j.payer}`)
      // 321 tasks beside 29 receipts read as unpaid work (user16 #10): a receipt is one billed task
      if (j.tasks !== undefined && j.tasks > j.receiptCount) lines.push(`  ${j.tasks - j.receiptCount} task(s) with no receipt: a task that measured no CPU time (sub-millisecond tasks, on this kernel's clock) bills nothing, and the newest may await the payer's next voucher`)
      if (j.note !== undefined) lines.push(`  ${j.note}`)
    }
    lines.push(`${'total'.padEnd(17)} ${coins(e.totals.signed).padStart(24)} ${coins(e.totals.redeemed).padStart(24)} ${coins(e.totals.pending).padStart(24)}`)
  }
  if (e.inFlight > 0) lines.push(`${e.inFlight} redeem transaction(s) on their way`)
  if (opts.wallet !== false) lines.push(...walletLines(e))
  return lines
}

/** `dbc job settle JOB`: the submitter's view of the job's escrow and of what it signed. */
export function jobPaymentLines (v: JobPaymentView, nowSec: number): string[] {
  const payer = /^0x0{40}$/i.test(v.payer) ? 'none (no escrow deposited)' : `${v.payer}${v.payer.toLowerCase() === v.account.toLowerCase() ? ' (this node)' : ''}`
  const lines = [
    `chain job  ${v.chainJobId}`,
    `payer      ${payer}`,
    `escrow     ${coins(v.escrow)} deposited, ${coins(v.paid)} redeemed by providers, ${coins(v.unspent)} unspent`
  ]
  const when = v.refundableAt === undefined ? '' : v.refundableAt <= nowSec ? ' (refundable now)' : ` (refundable in ${v.refundableAt - nowSec} s)`
  lines.push(`deadline   ${v.deadline === 0 ? '-' : new Date(v.deadline * 1000).toISOString()}; ${v.closedAt === 0 ? 'open' : `closed ${new Date(v.closedAt * 1000).toISOString()}`}; dispute window ${v.disputeWindow} s${v.refunded ? '' : when}`)
  lines.push(`refund     ${v.refunded ? 'done (vouchers of this job pay nothing now)' : v.refundable ? `${coins(v.refundAmount)} can be refunded now` : `not yet (${coins(v.refundAmount)} would return)`}`)
  if (v.providers.length === 0) lines.push('no vouchers signed for this job by this node')
  for (const p of v.providers) lines.push(`  ${p.provider}  signed ${coins(p.signed)} for ${p.receiptCount} receipt(s), redeemed ${coins(p.redeemed)}${p.outstanding > 0n ? `, ${coins(p.outstanding)} not redeemed yet` : ''}`)
  if (v.providers.length > 0) lines.push(`total signed ${coins(v.totals.signed)}, redeemed ${coins(v.totals.redeemed)}`)
  return lines
}
