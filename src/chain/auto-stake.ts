// A provider stakes with its own key from its own balance when it starts (default on for the
// local network): its declared GPUs, at least one unit for a CPU-only provider. The stake rule
// is the contract's (100,000 DBC per GPU for the first 10,000 GPUs, less after). A provider that
// staked fewer GPUs than it now declares stakes the difference: submitters lease a GPU offer
// only as far as its owner's stake covers it (core/settlement/stake-check.ts, review F4).
import type { Bridge } from './bridge.js'
import { toChainError } from './errors.js'

/** `gpus`: staked after the call; `toppedUpFrom`: what was staked before a top-up. */
export interface AutoStakeResult { staked: boolean, already: boolean, gpus: number, amount?: bigint, txHash?: string, toppedUpFrom?: number }

/** Stakes up to `gpus` (at least 1) for this node's own account: nothing when that many are staked already. */
export async function autoStake (bridge: Bridge, gpus: number): Promise<AutoStakeResult> {
  const units = Math.max(1, Math.floor(gpus))
  await bridge.ready()
  let staked: number
  try {
    staked = (await bridge.stakeOf()).gpus
  } catch (err) {
    throw toChainError(err, { action: 'reading this provider\'s stake', url: bridge.connectionInfo.url })
  }
  if (staked >= units) return { staked: true, already: true, gpus: staked }
  const r = await bridge.stake(units - staked)
  return { staked: true, already: false, gpus: units, amount: r.amount, txHash: r.txHash, ...(staked > 0 ? { toppedUpFrom: staked } : {}) }
}
