// The `chain` section of the node config and the `network` setting, resolved into one chain:
// which network, its RPC URL and chain id, and what the bridge does there (faucet, CREATE2
// address, confirmations). No viem here: the config loader checks this before a node starts.
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import type { BridgeInit } from './bridge-init.js'
import type { Store } from '../store/db.js'
import { DEFAULT_MIN_REDEEM_GAS_MULTIPLE } from '../core/settlement/redeem-policy.js'
import { NAME_A_NETWORK_HINT, NETWORKS, NETWORK_NAMES, type NetworkName } from './networks.js'

const WEI = 10n ** 18n
/** A local node whose key holds less than this is topped up from a dev key (PAYMENT.md §1). */
export const FAUCET_BELOW_WEI = 1_000n * WEI
/** What the local faucet sends at least: gas for a long time, and a few GPUs' stake. */
export const FAUCET_AMOUNT_WEI = 10_000_000n * WEI
/** The seed stake per GPU (the contract's STAKE_PER_GPU): an upper bound of what a GPU costs. */
export const STAKE_PER_GPU_WEI = 100_000n * WEI

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'an 0x-prefixed 20-byte hex address')

export const chainSettingsSchema = z.object({
  /** The chain's JSON-RPC URL (every node of the network uses the same chain). */
  rpc: z.string().url().optional(),
  /** Older name of `rpc`. */
  url: z.string().url().optional(),
  /** Older way to choose: "embedded" = the sandbox chain, "rpc" = the chain at `rpc`. */
  kind: z.enum(['embedded', 'rpc']).optional(),
  /** The chain id the RPC must report; default: the named network's. */
  chainId: z.number().int().positive().optional(),
  /** Hex private key file; default DATADIR/chain/key (created on first use). */
  keyFile: z.string().min(1).optional(),
  /** Settlement contract address; default: the deterministic CREATE2 address (deployed if missing). */
  contract: address.optional(),
  confirmations: z.number().int().min(1).max(64).optional(),
  /** Period of the redeem loop, ms (0 = none: redeem on demand). */
  tickMs: z.number().int().min(0).default(2000),
  /**
   * The redeem loop redeems a voucher early once it pays this many times one redeem's gas; below
   * that it waits until the job closes, its deadline passes or its refund time nears (then it
   * redeems what beats the gas). 0 = redeem every voucher at once (core/settlement/redeem-policy.ts).
   */
  minRedeemGasMultiple: z.number().min(0).max(1_000_000).default(DEFAULT_MIN_REDEEM_GAS_MULTIPLE),
  /** `local` only: top the node key up from a public dev key when it runs low (default true). */
  faucet: z.boolean().optional(),
  /**
   * This node's jobs lease only providers whose payout address staked enough for what they offer
   * (default on, except on the single-node sandbox; a manifest may still say verification.allowUnstaked).
   */
  requireStake: z.boolean().optional()
}).strict()

export interface ChainSettings {
  /** The network this node settles on; 'custom' = a chain named only by chain.rpc. */
  network: NetworkName | 'custom'
  /** True when nothing was configured and the sandbox was the default (logged at start). */
  defaulted: boolean
  kind: 'embedded' | 'rpc'
  url?: string
  chainId: number
  keyFile?: string
  contract?: string
  confirmations?: number
  tickMs: number
  minRedeemGasMultiple: number
  faucet: boolean
  /** Providers stake their GPUs on start unless told otherwise. */
  autoStakeDefault: boolean
  /** Jobs lease only staked providers (chain.requireStake; default: every network but the sandbox). */
  requireStake: boolean
}

export interface NetworkChoice {
  /** The `network` setting (--network), if any. */
  network?: unknown
  /** The node has bootstrap peers: it joins others, so the sandbox is refused. */
  joining?: boolean
}

/** Parses and resolves the chain: ConfigError naming the setting when invalid or ambiguous. */
export function parseChainSettings (raw: unknown, choice: NetworkChoice = {}): ChainSettings {
  const r = chainSettingsSchema.safeParse(raw ?? {})
  if (!r.success) {
    const issue = r.error.issues[0]
    if (issue.code === 'unrecognized_keys') throw new ConfigError(`chain.${issue.keys[0]}`, 'is not a known setting', { hint: `known chain settings: ${Object.keys(chainSettingsSchema.shape).join(', ')}` })
    throw new ConfigError(`chain.${issue.path.join('.')}`, issue.message, { hint: 'see the chain section of the config (rpc, chainId, keyFile, contract, ...)' })
  }
  const c = r.data
  if (c.rpc !== undefined && c.url !== undefined && c.rpc !== c.url) throw new ConfigError('chain.url', `is ${c.url} but chain.rpc is ${c.rpc}`, { hint: 'set only chain.rpc (chain.url is its older name)' })
  const rpc = c.rpc ?? c.url
  // the sandbox is one node: its only provider is itself, unstaked (auto-stake is off there)
  const rest = { keyFile: c.keyFile, contract: c.contract, tickMs: c.tickMs, minRedeemGasMultiple: c.minRedeemGasMultiple, requireStake: c.requireStake ?? true }
  const sandboxStake = { requireStake: c.requireStake ?? false }
  const joining = choice.joining === true

  if (choice.network !== undefined) {
    if (typeof choice.network !== 'string' || !(NETWORK_NAMES as readonly string[]).includes(choice.network)) {
      throw new ConfigError('network', `${JSON.stringify(choice.network)} is not a network`, { hint: `one of ${NETWORK_NAMES.join(', ')}` })
    }
    const name = choice.network as NetworkName
    const net = NETWORKS[name]
    if (name === 'sandbox') {
      if (joining) throw new ConfigError('network', 'sandbox is a chain inside this one node, but this node joins others (bootstrap peers): they could never see its payments', { hint: NAME_A_NETWORK_HINT })
      if (rpc !== undefined) throw new ConfigError('chain.rpc', 'is set, but network sandbox is the EVM inside this node', { hint: 'drop chain.rpc, or use --network local --chain-rpc URL' })
      if (c.kind === 'rpc') throw new ConfigError('chain.kind', 'is "rpc", but network sandbox is the EVM inside this node', { hint: 'drop chain.kind' })
      return { network: name, defaulted: false, kind: 'embedded', chainId: c.chainId ?? net.chainId, confirmations: c.confirmations, faucet: false, autoStakeDefault: net.autoStake, ...rest, ...sandboxStake }
    }
    if (c.kind === 'embedded') throw new ConfigError('chain.kind', `is "embedded" (the sandbox), but network is ${name}`, { hint: 'drop chain.kind: the network names the chain' })
    if (c.chainId !== undefined && net.chainIdFixed && c.chainId !== net.chainId) {
      throw new ConfigError('chain.chainId', `is ${c.chainId}, but ${name} is chain ${net.chainId}`, { hint: `drop chain.chainId (--chain-id), or use it with --network local or --chain-rpc alone` })
    }
    if (c.faucet === true && !net.faucet) throw new ConfigError('chain.faucet', `is on, but ${name} is not a local chain: its coins are real`, { hint: 'drop chain.faucet' })
    return {
      network: name,
      defaulted: false,
      kind: 'rpc',
      url: rpc ?? net.rpc,
      chainId: c.chainId ?? net.chainId,
      confirmations: c.confirmations ?? net.confirmations,
      faucet: net.faucet && c.faucet !== false,
      autoStakeDefault: net.autoStake,
      ...rest
    }
  }

  // No network named: an explicit RPC is a chain of its own; nothing at all is the sandbox.
  if (rpc !== undefined || c.kind === 'rpc') {
    if (c.kind === 'embedded') throw new ConfigError('chain.kind', 'is "embedded", but chain.rpc is set', { hint: 'drop one of them' })
    if (rpc === undefined) throw new ConfigError('chain.rpc', 'is required when chain.kind is "rpc"', { hint: 'e.g. chain.rpc: http://127.0.0.1:8545 (or --chain-rpc URL)' })
    if (c.chainId === undefined) throw new ConfigError('chain.chainId', `is required with chain.rpc ${rpc}: the id that chain must report`, { hint: 'pass --chain-id N (anvil: 31337, DBC testnet 19850818, mainnet 19880818), or --network NAME' })
    if (c.faucet === true) throw new ConfigError('chain.faucet', 'works only with --network local', { hint: 'add --network local, or drop chain.faucet' })
    return { network: 'custom', defaulted: false, kind: 'rpc', url: rpc, chainId: c.chainId, confirmations: c.confirmations, faucet: false, autoStakeDefault: false, ...rest }
  }
  if (joining) {
    throw new ConfigError(c.kind === 'embedded' ? 'chain.kind' : 'network', c.kind === 'embedded'
      ? 'is "embedded" (a chain inside this one node), but this node joins others (bootstrap peers): they could never see its payments'
      : 'is not set, and this node joins others (bootstrap peers): every node of a network must settle on the same chain', { hint: NAME_A_NETWORK_HINT })
  }
  return { network: 'sandbox', defaulted: c.kind === undefined, kind: 'embedded', chainId: c.chainId ?? NETWORKS.sandbox.chainId, confirmations: c.confirmations, faucet: false, autoStakeDefault: false, ...rest, ...sandboxStake }
}

/** What the bridge is built from; `stakeGpus` sizes the local faucet's top-up. */
export function bridgeInitFromSettings (s: ChainSettings, deps: { store: Store, dataDir: string, stakeGpus?: number }): BridgeInit {
  const stakeNeed = BigInt(Math.max(1, deps.stakeGpus ?? 1)) * STAKE_PER_GPU_WEI + 1_000_000n * WEI
  return {
    store: deps.store,
    dataDir: deps.dataDir,
    chain: s.kind === 'rpc' ? { kind: 'rpc', url: s.url as string, chainId: s.chainId } : { kind: 'embedded', chainId: s.chainId },
    keyFile: s.keyFile,
    contract: s.contract as `0x${string}` | undefined,
    // Every node of a shared chain finds the same contract by computing its address.
    addressing: s.kind === 'rpc' ? 'create2' : 'deploy',
    faucet: s.faucet ? { belowWei: FAUCET_BELOW_WEI, amountWei: stakeNeed > FAUCET_AMOUNT_WEI ? stakeNeed : FAUCET_AMOUNT_WEI } : undefined,
    confirmations: s.confirmations,
    tickMs: s.tickMs,
    redeemPolicy: { minGasMultiple: s.minRedeemGasMultiple }
  }
}

/** One line for the log and `dbc chain status`: which chain and why. */
export function describeChain (s: ChainSettings): string {
  if (s.network === 'sandbox') return `sandbox chain ${s.chainId} (an EVM inside this node; no other node sees it)${s.defaulted ? ': no network configured' : ''}`
  return `${s.network} chain ${s.chainId} at ${s.url ?? '?'}`
}
