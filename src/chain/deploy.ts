// Where the Settlement contract lives. On a shared chain every node computes the same address:
// CREATE2 through the standard deterministic-deployment proxy (built into anvil, present on
// most EVM chains) with a fixed salt over the contract's init code. The first node that finds
// no code there deploys it; a second deploy of the same code cannot succeed (the proxy reverts),
// so racing nodes end with one contract. The sandbox chain (one node) deploys plainly.
import { concat, getContractAddress, keccak256, toHex } from 'viem'
import { ChainError } from '../errors.js'
import { settlementBytecode } from './artifacts/settlement.js'
import type { ChainConnection } from './client.js'
import type { Address, Hex } from './config.js'
import { toChainError } from './errors.js'
import type { SendQueue } from './sender.js'

/** The deterministic-deployment proxy (github.com/Arachnid/deterministic-deployment-proxy). */
export const CREATE2_DEPLOYER: Address = '0x4e59b44847b379578588920ca78fbf26c0b4956c'
/** Fixed: changing it moves every network's contract. */
export const SETTLEMENT_SALT: Hex = keccak256(toHex('dbc-overlay/Settlement'))

/** The address of the Settlement contract built from `bytecode` on any chain with the proxy. */
export function settlementAddress (bytecode: Hex = settlementBytecode as Hex): Address {
  return getContractAddress({ opcode: 'CREATE2', from: CREATE2_DEPLOYER, salt: SETTLEMENT_SALT, bytecode })
}

export async function hasCode (conn: ChainConnection, address: Address): Promise<boolean> {
  try {
    const code = await conn.publicClient.getCode({ address, blockTag: 'latest' })
    return code !== undefined && code !== '0x'
  } catch (err) {
    throw toChainError(err, { action: `reading the code at ${address}`, url: conn.url })
  }
}

export interface WaitOpts { confirmations: number, timeoutMs: number }

/** Finds the contract at its CREATE2 address, deploying it there if absent. Idempotent. */
export async function ensureCreate2Settlement (conn: ChainConnection, queue: SendQueue, wait: WaitOpts, opts: { deploy?: boolean } = {}): Promise<Address> {
  const address = settlementAddress()
  if (await hasCode(conn, address)) return address
  if (opts.deploy === false) throw new ChainError('CONTRACT_MISSING', `no Settlement contract at ${address} on chain ${conn.chainId}`, { hint: 'start one node that may deploy it, or set chain.contract' })
  if (!await hasCode(conn, CREATE2_DEPLOYER)) {
    throw new ChainError('CONTRACT_MISSING', `chain ${conn.chainId} has no CREATE2 deployer at ${CREATE2_DEPLOYER}, so the Settlement contract's address cannot be computed`, {
      hint: 'set chain.contract to a deployed Settlement contract (the same for every node of the network), or deploy the deterministic-deployment proxy first'
    })
  }
  const action = 'deploying the Settlement contract (CREATE2)'
  try {
    await queue.sendAndWait(async () => await queue.signRaw({ to: CREATE2_DEPLOYER, data: concat([SETTLEMENT_SALT, settlementBytecode as Hex]), value: 0n, action }), action, wait)
  } catch (err) {
    // Another node may have deployed it between our look and our send: then all is well.
    if (await hasCode(conn, address)) return address
    throw toChainError(err, { action, url: conn.url })
  }
  if (!await hasCode(conn, address)) throw new ChainError('CONTRACT_MISSING', `the CREATE2 deploy left no code at ${address}`, { hint: 'the contract may be larger than the chain allows; check the deployer' })
  return address
}

/** A fresh contract from this key (the sandbox chain, or tests that want their own). */
export async function deployPlain (queue: SendQueue, wait: WaitOpts): Promise<Address> {
  const receipt = await queue.sendAndWait(async () => await queue.signRaw({ data: settlementBytecode as Hex, value: 0n, action: 'deploying the Settlement contract' }), 'deploying the Settlement contract', wait)
  if (receipt.contractAddress == null) throw new ChainError('CONTRACT_MISSING', 'the deploy transaction created no contract')
  return receipt.contractAddress
}
