// Settlement, sans-IO: merkle roots of receipts, the chain's job key, the stake rule, EIP-712
// vouchers and the bounds a submitter pays receipts within.
export * from './hex.js'
export * from './merkle.js'
export * from './stake.js'
export * from './batch.js'
export * from './voucher.js'
export * from './payout-binding.js'
export * from './bounds.js'
