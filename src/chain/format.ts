// Plain-text views for the CLI (`dbc chain status`, `dbc wallet`, `dbc stake`, `dbc job settle`)
// and the demo's payout print. Pure: they take the Bridge's results and return lines.
import { formatCoins, stakeRequired } from '../core/settlement/index.js'
import type { BridgeStatus, PayoutsView, SettleResult, StakeResult } from './types.js'

const coins = (wei: bigint | undefined): string => wei === undefined ? '-' : `${formatCoins(wei)} DBC`

export function chainStatusLines (s: BridgeStatus): string[] {
  const lines = [
    `chain      ${s.kind === 'embedded' ? 'embedded EVM' : s.url ?? 'rpc'} (chain id ${s.chainId})${s.reachable ? '' : '  UNREACHABLE'}`,
    `block      ${s.block?.toString() ?? '-'}`,
    `contract   ${s.contract ?? '-'}`,
    `account    ${s.account}`,
    `balance    ${coins(s.balance)}`,
    `outbox     ${s.outbox.built} built, ${s.outbox.sent} sent, ${s.outbox.confirmed} confirmed${s.outbox.conflict > 0 ? `, ${s.outbox.conflict} CONFLICT` : ''}; ${s.pendingReceipts} receipt(s) waiting for a batch`
  ]
  if (s.lastError !== undefined) lines.push(`error      ${s.lastError.message}${s.lastError.hint === undefined ? '' : `\n           hint: ${s.lastError.hint}`}`)
  return lines
}

export function walletLines (s: BridgeStatus): string[] {
  return [
    `address      ${s.account}`,
    `balance      ${coins(s.balance)}`,
    `staked       ${s.stake === undefined ? '-' : `${s.stake.gpus} GPU(s), ${coins(s.stake.amount)}`}`,
    `withdrawable ${coins(s.withdrawable)}`
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

export function settlementLines (results: SettleResult[]): string[] {
  const lines: string[] = []
  for (const r of results) {
    lines.push(`batch ${r.batchId.slice(0, 18)}…  ${r.state.padEnd(9)} ${r.receiptCount} receipt(s), ${coins(r.total)}${r.txHash === undefined ? '' : `  tx ${r.txHash}`}${r.gasUsed === undefined ? '' : `  gas ${r.gasUsed}`}`)
    const paid = new Map((r.paid ?? []).map(p => [p.provider.toLowerCase(), p.amount]))
    const withheld = new Map((r.withheld ?? []).map(p => [p.provider.toLowerCase(), p.amount]))
    for (const p of r.payouts) {
      const k = p.provider.toLowerCase()
      const note = withheld.has(k) ? 'WITHHELD (provider not staked)' : paid.has(k) ? 'paid' : r.state === 'confirmed' ? 'paid' : 'pending'
      lines.push(`  ${p.provider}  ${coins(p.amount).padStart(24)}  ${note}`)
    }
    if (r.lastError !== undefined && r.state !== 'confirmed') lines.push(`  last error: ${r.lastError}`)
  }
  if (results.length === 0) lines.push('nothing to settle')
  return lines
}

export function payoutLines (v: PayoutsView): string[] {
  return [
    `provider     ${v.provider}`,
    `paid         ${coins(v.totalPaid)} in ${v.paid.length} batch(es)`,
    `withheld     ${v.withheld.length} payout(s) while not staked`,
    `withdrawable ${coins(v.withdrawable)}`
  ]
}
