// Which chain the bridge talks to, and the viem chain object for it. Which chain a node uses
// is decided by its network (networks.ts, settings.ts).
import { defineChain, type Chain } from 'viem'
import { DBC_CHAIN_ID } from './dev-keys.js'
import { DBC_TESTNET_CHAIN_ID, LOCAL_CHAIN_ID } from './networks.js'

export type Hex = `0x${string}`
export type Address = `0x${string}`

export type ChainConfig =
  /** The EVM inside the process, persisted in the data dir: the single-node sandbox. */
  | { kind: 'embedded', path?: string, chainId?: number }
  /** Any EVM JSON-RPC node (DeepBrain Chain, anvil, ...): what every shared network uses. */
  | { kind: 'rpc', url: string, chainId: number }

export const DEFAULT_CHAIN: ChainConfig = { kind: 'embedded' }

export function dbcChain (chainId: number = DBC_CHAIN_ID, url?: string): Chain {
  return defineChain({
    id: chainId,
    name: chainId === DBC_CHAIN_ID ? 'DeepBrain Chain' : chainId === DBC_TESTNET_CHAIN_ID ? 'DeepBrain Chain testnet' : chainId === LOCAL_CHAIN_ID ? 'local (anvil)' : `EVM ${chainId}`,
    nativeCurrency: { name: 'DBC', symbol: 'DBC', decimals: 18 },
    rpcUrls: { default: { http: url === undefined ? [] : [url] } }
  })
}
