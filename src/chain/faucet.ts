// The local network's faucet: a node whose key runs low on a local anvil chain is topped up
// from one of anvil's well-known dev keys. Those keys are public by design, so this runs only on
// `--network local` and never on a chain with DBC's ids (checked here again, not just in config).
import { createWalletClient, http } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { ChainError } from '../errors.js'
import type { ChainConnection } from './client.js'
import type { Address, Hex } from './config.js'
import { DEV_PRIVATE_KEYS } from './dev-keys.js'
import { toChainError } from './errors.js'
import { DBC_MAINNET_CHAIN_ID, DBC_TESTNET_CHAIN_ID } from './networks.js'

export interface FaucetOptions {
  /** Top up only when the key holds less than this (wei). */
  belowWei: bigint
  /** How much to send (wei); less when the dev key holds less than twice that. */
  amountWei: bigint
  /** Dev keys to draw from (default: the 3rd to 10th; the first two are left to people and tests). */
  keys?: readonly Hex[]
  attempts?: number
}

export interface FaucetResult { before: bigint, after: bigint, sent: bigint, from?: Address, txHash?: Hex }

export async function topUpFromFaucet (conn: ChainConnection, opts: FaucetOptions): Promise<FaucetResult> {
  if (conn.kind !== 'rpc' || conn.url === undefined) throw new ChainError('FAUCET_REFUSED', 'the faucet serves a local RPC chain only')
  if (conn.chainId === DBC_MAINNET_CHAIN_ID || conn.chainId === DBC_TESTNET_CHAIN_ID) {
    throw new ChainError('FAUCET_REFUSED', `chain ${conn.chainId} is DeepBrain Chain: no faucet there`, { hint: 'fund the node key (`dbc wallet` shows it) with real DBC' })
  }
  const me = conn.account.address
  const balanceOf = async (a: Address): Promise<bigint> => await conn.publicClient.getBalance({ address: a, blockTag: 'latest' }).catch(err => { throw toChainError(err, { action: 'reading a balance for the faucet', url: conn.url }) })
  const before = await balanceOf(me)
  if (before >= opts.belowWei) return { before, after: before, sent: 0n }
  const keys = (opts.keys ?? DEV_PRIVATE_KEYS.slice(2)).filter(k => privateKeyToAccount(k).address.toLowerCase() !== me.toLowerCase())
  if (keys.length === 0) throw new ChainError('FAUCET_REFUSED', 'no dev key to draw from')
  // Nodes starting together pick different keys (by address), so their nonces rarely collide;
  // when they do, the send fails and the next attempt (next key) goes through.
  const first = Number(BigInt(me) % BigInt(keys.length))
  const attempts = opts.attempts ?? 12
  let lastErr: unknown
  for (let i = 0; i < attempts; i++) {
    const account = privateKeyToAccount(keys[(first + i) % keys.length])
    try {
      const now = await balanceOf(me)
      if (now >= opts.belowWei) return { before, after: now, sent: now - before }
      const available = await balanceOf(account.address)
      const amount = available / 2n < opts.amountWei ? available / 2n : opts.amountWei
      if (amount === 0n) continue
      const wallet = createWalletClient({ chain: conn.chain, transport: http(conn.url, { timeout: 10_000, retryCount: 0 }), account })
      const txHash = await wallet.sendTransaction({ to: me, value: amount, chain: conn.chain, account })
      const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash, timeout: 30_000 })
      if (receipt.status === 'success') {
        const after = await balanceOf(me)
        return { before, after, sent: amount, from: account.address, txHash }
      }
    } catch (err) {
      lastErr = err
      await new Promise(resolve => setTimeout(resolve, 20 + Math.floor(Math.random() * 200)))
    }
  }
  const after = await balanceOf(me)
  if (after >= opts.belowWei) return { before, after, sent: after - before }
  const cause = lastErr === undefined ? undefined : toChainError(lastErr, { action: 'sending from the faucet', url: conn.url })
  throw new ChainError('FAUCET_FAILED', `the local faucet could not fund ${me} (${attempts} tries)${cause === undefined ? '' : `: ${cause.message}`}`, { cause: lastErr, hint: 'is the chain at --chain-rpc a local anvil with its default dev keys funded? Or fund the key yourself' })
}
