// Settlement, sans-IO: receipt checks, merkle batching, payouts per provider, the stake rule.
export * from './hex.js'
export * from './merkle.js'
export * from './stake.js'
export * from './batch.js'
export * from './verify.js'
export * from './policy.js'
export * from './voucher.js'
export * from './bounds.js'
