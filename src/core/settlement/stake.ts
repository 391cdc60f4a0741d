// The seed's provider stake rule, mirrored from contracts/Settlement.sol (stakeForGpu):
// 100,000 coins per GPU for the first 10,000 GPUs of the network; GPU number 10,000+n costs
// 100,000 x 10000 / (10000+n). Amounts are wei (18 decimals); each GPU's stake is rounded
// down to the wei (integer division), and a multi-GPU stake is the sum of the per-GPU values.
export const WEI_PER_COIN = 10n ** 18n
export const STAKE_PER_GPU = 100_000n * WEI_PER_COIN
export const FULL_STAKE_GPUS = 10_000n
export const MAX_GPUS_PER_CALL = 20_000

/** Stake for GPU number `gpuNumber` (1-based, over the whole network), in wei. */
export function stakeForGpu (gpuNumber: bigint | number): bigint {
  const g = BigInt(gpuNumber)
  if (g < 1n) throw new RangeError('GPU numbers start at 1')
  if (g <= FULL_STAKE_GPUS) return STAKE_PER_GPU
  return (STAKE_PER_GPU * FULL_STAKE_GPUS) / g
}

/** Stake to add `gpus` GPUs to a network that has `networkGpus` staked now, in wei. */
export function stakeRequired (networkGpus: bigint | number, gpus: number): bigint {
  if (!Number.isInteger(gpus) || gpus < 1 || gpus > MAX_GPUS_PER_CALL) throw new RangeError(`gpus must be 1..${MAX_GPUS_PER_CALL}`)
  const first = BigInt(networkGpus) + 1n
  let sum = 0n
  for (let g = first; g < first + BigInt(gpus); g++) sum += stakeForGpu(g)
  return sum
}

/** Wei as a decimal coin amount, e.g. 99990000999900009999n → "99.990000999900009999". */
export function formatCoins (wei: bigint, decimals = 18): string {
  const neg = wei < 0n
  const v = neg ? -wei : wei
  const unit = 10n ** BigInt(decimals)
  const frac = (v % unit).toString().padStart(decimals, '0').replace(/0+$/, '')
  return `${neg ? '-' : ''}${v / unit}${frac === '' ? '' : '.' + frac}`
}
