// A provider stakes with its own key from its own balance when it starts (default on for the
// local network): its declared GPUs, at least one unit for a CPU-only provider. The stake rule
// is the contract's (100,000 DBC per GPU for the first 10,000 GPUs, less after).
import { settlementAbi } from './artifacts/settlement.js'
import type { Bridge } from './bridge.js'
import { toChainError } from './errors.js'

export interface AutoStakeResult { staked: boolean, already: boolean, gpus: number, amount?: bigint, txHash?: string }

/** Stakes `gpus` (at least 1) for this node's own account unless it is staked already. */
export async function autoStake (bridge: Bridge, gpus: number): Promise<AutoStakeResult> {
  const units = Math.max(1, Math.floor(gpus))
  const contract = await bridge.ready()
  const conn = bridge.connectionInfo
  let already: boolean
  try {
    already = await conn.publicClient.readContract({ address: contract, abi: settlementAbi, functionName: 'isStaked', args: [conn.account.address] } as never) as boolean
  } catch (err) {
    throw toChainError(err, { action: 'reading whether this provider is staked', url: conn.url })
  }
  if (already) return { staked: true, already: true, gpus: units }
  const r = await bridge.stake(units)
  return { staked: true, already: false, gpus: units, amount: r.amount, txHash: r.txHash }
}
