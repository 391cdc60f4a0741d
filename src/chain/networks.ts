// The named networks a node can join, and which chain each one settles on. Pure data, no viem:
// the node's config loader checks a node's network choice before anything starts.
//
// Every node of one network must talk to the same chain, or a provider is "paid" somewhere it
// can never see. The embedded EVM (sandbox) lives inside one node's process, so it is for a
// single node only and is never picked silently for a node that joins others.

export const NETWORK_NAMES = ['sandbox', 'local', 'dbc-testnet', 'dbc-mainnet'] as const
export type NetworkName = typeof NETWORK_NAMES[number]

export interface NetworkInfo {
  /** 'embedded': the EVM in this process; 'rpc': a JSON-RPC node every peer reaches. */
  kind: 'embedded' | 'rpc'
  chainId: number
  /** Default JSON-RPC URL (rpc networks); `chain.rpc` / `--chain-rpc` overrides it. */
  rpc?: string
  /** A chain id other than the default is accepted (a local anvil can run any id). */
  chainIdFixed: boolean
  /** Public dev keys may fund node keys here (only a chain of one's own). */
  faucet: boolean
  /** Providers stake on start unless `provider.autoStake` says otherwise. */
  autoStake: boolean
  /** Blocks a transaction needs on top of it (anvil mines a block per transaction: 1). */
  confirmations?: number
  about: string
}

export const LOCAL_CHAIN_ID = 31337
export const DBC_TESTNET_CHAIN_ID = 19850818
export const DBC_MAINNET_CHAIN_ID = 19880818
export const LOCAL_RPC = 'http://127.0.0.1:8545'

export const NETWORKS: Record<NetworkName, NetworkInfo> = {
  sandbox: { kind: 'embedded', chainId: DBC_MAINNET_CHAIN_ID, chainIdFixed: false, faucet: false, autoStake: false, about: 'an EVM inside this node (single node only; nobody else sees it)' },
  local: { kind: 'rpc', chainId: LOCAL_CHAIN_ID, rpc: LOCAL_RPC, chainIdFixed: false, faucet: true, autoStake: true, confirmations: 1, about: 'a local anvil shared by the nodes of one machine or LAN (`dbc chain serve`)' },
  'dbc-testnet': { kind: 'rpc', chainId: DBC_TESTNET_CHAIN_ID, rpc: 'https://rpc-testnet.dbcwallet.io', chainIdFixed: true, faucet: false, autoStake: false, about: 'DeepBrain Chain testnet' },
  'dbc-mainnet': { kind: 'rpc', chainId: DBC_MAINNET_CHAIN_ID, rpc: 'https://rpc.dbcwallet.io', chainIdFixed: true, faucet: false, autoStake: false, about: 'DeepBrain Chain mainnet (real money)' }
}

/** What to tell an operator whose node joins others with no chain named. */
export const NAME_A_NETWORK_HINT = 'name the network\'s chain: `--network local --chain-rpc URL` (a chain started by `dbc chain serve`), ' +
  '`--network dbc-testnet`, `--network dbc-mainnet`, or `--chain-rpc URL --chain-id N` (config: network, chain.rpc, chain.chainId)'
