// viem and node errors turned into ChainErrors that say what happened and what to do.
// Codes: CHAIN_UNREACHABLE, CHAIN_ID_MISMATCH, KEY_UNFUNDED, CONTRACT_REVERTED, NONCE_TOO_LOW,
// CONTRACT_MISSING, CHAIN_ERROR.
import { BaseError, ContractFunctionRevertedError, HttpRequestError, InsufficientFundsError, NonceTooLowError, TimeoutError } from 'viem'
import { ChainError } from '../errors.js'

export interface ErrorContext { action: string, url?: string }

export function isChainErrorCode (err: unknown, code: string): boolean {
  return err instanceof ChainError && err.code === code
}

export function toChainError (err: unknown, ctx: ErrorContext): ChainError {
  if (err instanceof ChainError) return err
  const where = ctx.url === undefined ? 'the chain' : `the chain RPC at ${ctx.url}`
  const base = err instanceof BaseError ? err : undefined
  const reverted = base?.walk(e => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null | undefined
  if (reverted != null) {
    const name = reverted.data?.errorName ?? reverted.reason ?? 'unknown reason'
    const args = (reverted.data?.args ?? []).map(a => typeof a === 'bigint' ? a.toString() : String(a))
    return new ChainError('CONTRACT_REVERTED', `${ctx.action} reverted: ${name}(${args.join(', ')})`, { cause: err, data: { errorName: name, args }, hint: revertHint(name) })
  }
  if (base?.walk(e => e instanceof InsufficientFundsError) != null || /insufficient funds/i.test(messageOf(err))) {
    return new ChainError('KEY_UNFUNDED', `${ctx.action}: the chain key has too little balance to pay for gas and value`, { cause: err, hint: 'fund the node\'s account (see `dbc wallet`); the redeem loop retries' })
  }
  if (base?.walk(e => e instanceof NonceTooLowError) != null || /nonce too low/i.test(messageOf(err))) {
    return new ChainError('NONCE_TOO_LOW', `${ctx.action}: nonce already used`, { cause: err, hint: 'another sender shares this key; the bridge re-signs with the next nonce' })
  }
  if (base?.walk(e => e instanceof HttpRequestError || e instanceof TimeoutError) != null || /fetch failed|ECONNREFUSED|ECONNRESET|socket hang up|timed? ?out/i.test(messageOf(err))) {
    return new ChainError('CHAIN_UNREACHABLE', `${ctx.action}: cannot reach ${where}`, { cause: err, hint: 'check that the chain node is running and chain.rpc is right; vouchers and redeems wait in the store and are retried' })
  }
  return new ChainError('CHAIN_ERROR', `${ctx.action} failed: ${(base?.shortMessage ?? messageOf(err)).split('\n')[0]}`, { cause: err })
}

function revertHint (name: string): string | undefined {
  switch (name) {
    case 'NotStaked': return 'stake first (`dbc stake 1`): only a staked provider may redeem; its vouchers wait in the store'
    case 'NotPayee': return 'a voucher can only be redeemed by the provider it names'
    case 'NotSignedByPayer': return 'the voucher was not signed by the job\'s payer: it pays nothing and is set aside'
    case 'MalformedSignature': return 'the voucher signature is not a 65-byte low-s secp256k1 signature'
    case 'UnknownJob': return 'no escrow was deposited for this job on this chain and contract'
    case 'NotPayer': return 'only the account that made the first deposit can top up, close or refund the job'
    case 'DisputeWindowOpen': return 'providers may still redeem: refund after the time in the error (min(deadline, close) + dispute window)'
    case 'JobAlreadyRefunded': return 'the escrow was refunded already; vouchers of this job pay nothing now'
    case 'JobAlreadyClosed': return 'a closed job takes no more deposits: use a new job id'
    case 'DeadlinePassed': return 'pass a deadline after the chain\'s current time'
    case 'InvalidDisputeWindow': return 'the dispute window must be 60 s to 30 days'
    case 'StakeTooLow': return 'send at least the required stake (see stakeQuote)'
    default: return undefined
  }
}

function messageOf (err: unknown): string {
  if (err instanceof BaseError) return `${err.shortMessage} ${err.details ?? ''}`
  if (err instanceof Error) return err.message
  return String(err)
}
