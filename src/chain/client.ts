// viem clients over either transport: the embedded EVM (an in-process EIP-1193 provider) or a
// JSON-RPC node over HTTP with bounded timeouts. Connecting does no I/O on the RPC path, so a
// node that is down does not stop the bridge from starting: `verifyChain` checks it later.
import { join } from 'node:path'
import { createPublicClient, createWalletClient, custom, http, type Chain, type PublicClient, type Transport, type WalletClient, type Account } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { ChainError } from '../errors.js'
import { dbcChain, type ChainConfig, type Hex } from './config.js'
import { DBC_CHAIN_ID, DEV_BALANCE_WEI } from './dev-keys.js'
import type { EmbeddedChain } from './embedded/chain.js'
import { toChainError } from './errors.js'

export interface ChainConnection {
  kind: 'embedded' | 'rpc'
  chainId: number
  url?: string
  chain: Chain
  publicClient: PublicClient<Transport, Chain>
  walletClient: WalletClient<Transport, Chain, Account>
  account: PrivateKeyAccount
  /** Present for the embedded chain. */
  embedded?: EmbeddedChain
  close: () => void
}

export interface ConnectOptions {
  privateKey: Hex
  /** Where the embedded chain lives when its config names no path: DATADIR/chain/embedded.sqlite. */
  dataDir?: string
  /** Per-request timeout on the RPC path (ms). */
  timeoutMs?: number
}

export async function connectChain (cfg: ChainConfig, opts: ConnectOptions): Promise<ChainConnection> {
  const account = privateKeyToAccount(opts.privateKey)
  if (cfg.kind === 'embedded') {
    const path = cfg.path ?? (opts.dataDir === undefined ? ':memory:' : join(opts.dataDir, 'chain', 'embedded.sqlite'))
    // The node's own key is funded at genesis, like the dev keys: the local chain is a sandbox.
    // Loaded only here: the in-process EVM costs seconds of start-up that RPC nodes never need.
    const [{ EmbeddedChain }, { embeddedProvider }] = await Promise.all([import('./embedded/chain.js'), import('./embedded/rpc.js')])
    const embedded = await EmbeddedChain.open({ path, chainId: cfg.chainId ?? DBC_CHAIN_ID, fund: { [account.address]: DEV_BALANCE_WEI } })
    const chain = dbcChain(embedded.chainId)
    const transport = custom(embeddedProvider(embedded), { retryCount: 0 })
    return {
      kind: 'embedded',
      chainId: embedded.chainId,
      chain,
      publicClient: createPublicClient({ chain, transport, pollingInterval: 20 }),
      walletClient: createWalletClient({ chain, transport, account, pollingInterval: 20 }),
      account,
      embedded,
      close: () => embedded.close()
    }
  }
  const chain = dbcChain(cfg.chainId, cfg.url)
  const transport = http(cfg.url, { timeout: opts.timeoutMs ?? 10_000, retryCount: 1, retryDelay: 200 })
  return {
    kind: 'rpc',
    chainId: cfg.chainId,
    url: cfg.url,
    chain,
    publicClient: createPublicClient({ chain, transport, pollingInterval: 100 }),
    walletClient: createWalletClient({ chain, transport, account, pollingInterval: 100 }),
    account,
    close: () => {}
  }
}

/** Asks the chain for its id: ChainError CHAIN_UNREACHABLE or CHAIN_ID_MISMATCH if wrong. */
export async function verifyChain (conn: ChainConnection): Promise<void> {
  let id: number
  try {
    id = await conn.publicClient.getChainId()
  } catch (err) {
    throw toChainError(err, { action: 'reading the chain id', url: conn.url })
  }
  if (id !== conn.chainId) {
    throw new ChainError('CHAIN_ID_MISMATCH', `the chain at ${conn.url ?? 'the embedded EVM'} has chain id ${id}, but the config says ${conn.chainId}`, {
      hint: `fix chain.chainId (DeepBrain Chain is ${DBC_CHAIN_ID}) or chain.url; nothing was sent`,
      data: { expected: conn.chainId, actual: id }
    })
  }
}
