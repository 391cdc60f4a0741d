// A shared chain for payment tests and the settlement bench: anvil (free port), the Settlement
// contract deployed through the CREATE2 deployer built into anvil, viem clients for any key,
// funding, chain-clock control, voucher signing and a revert decoder. Always `stop()` it.
import {
  BaseError, ContractFunctionRevertedError, concat, createPublicClient, createWalletClient, getContractAddress, http,
  type Account, type Address, type Chain, type Hex, type PublicClient, type Transport, type WalletClient
} from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { DEV_PRIVATE_KEYS, dbcChain, settlementAbi, settlementBytecode, startAnvil, type AnvilHandle } from '../../src/chain/index.js'
import { voucherTypedData, type SignedVoucher, type Voucher, type VoucherDomain } from '../../src/core/settlement/voucher.js'

/** The deterministic deployment proxy (Arachnid) that anvil ships at genesis. */
export const CREATE2_DEPLOYER: Address = '0x4e59b44847b379578588920ca78fbf26c0b4956c'
export const TEST_SALT: Hex = `0x${'00'.repeat(31)}02`

export type Wallet = WalletClient<Transport, Chain, Account>

export interface ChainFixture {
  anvil: AnvilHandle
  chain: Chain
  publicClient: PublicClient<Transport, Chain>
  /** The Settlement contract (CREATE2 address for TEST_SALT). */
  contract: Address
  domain: VoucherDomain
  /** A wallet for a dev key index (0..9) or a private key. */
  wallet: (key: number | Hex) => Wallet
  /** A fresh key with `coins` DBC (anvil_setBalance). */
  freshWallet: (coins?: bigint) => Promise<Wallet>
  /** Moves the chain clock forward and mines a block, so reads and gas estimates see it. */
  increaseTime: (seconds: number) => Promise<void>
  now: () => Promise<bigint>
  /** Sends a contract call and waits for its receipt; throws unless it succeeded. */
  send: (w: Wallet, functionName: string, args: readonly unknown[], value?: bigint) => Promise<import('viem').TransactionReceipt>
  read: <T>(functionName: string, args?: readonly unknown[]) => Promise<T>
  stop: () => Promise<void>
}

export const E18 = 10n ** 18n

export async function startChainFixture (): Promise<ChainFixture> {
  const anvil = await startAnvil()
  try {
    const chain = dbcChain()
    const transport = http(anvil.url, { retryCount: 0, timeout: 30_000 })
    const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 })
    const wallet = (key: number | Hex): Wallet => createWalletClient({ chain, transport, account: privateKeyToAccount(typeof key === 'number' ? DEV_PRIVATE_KEYS[key] : key), pollingInterval: 20 })
    const contract = await deploySettlement(publicClient, wallet(0), TEST_SALT)
    const send: ChainFixture['send'] = async (w, functionName, args, value) => {
      const hash = await w.writeContract({ address: contract, abi: settlementAbi, functionName, args, value } as never)
      const receipt = await publicClient.waitForTransactionReceipt({ hash })
      if (receipt.status !== 'success') throw new Error(`${functionName} reverted on chain`)
      return receipt
    }
    return {
      anvil,
      chain,
      publicClient,
      contract,
      domain: { chainId: chain.id, verifyingContract: contract },
      wallet,
      freshWallet: async (coins = 1_000_000n) => {
        const w = wallet(generatePrivateKey())
        await publicClient.request({ method: 'anvil_setBalance' as never, params: [w.account.address, `0x${(coins * E18).toString(16)}`] as never })
        return w
      },
      increaseTime: async (s) => {
        await publicClient.request({ method: 'evm_increaseTime' as never, params: [s] as never })
        await publicClient.request({ method: 'evm_mine' as never, params: [] as never })
      },
      now: async () => (await publicClient.getBlock()).timestamp,
      send,
      read: async <T>(functionName: string, args: readonly unknown[] = []) => await publicClient.readContract({ address: contract, abi: settlementAbi, functionName, args } as never) as T,
      stop: async () => { await anvil.stop() }
    }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/** Deploys Settlement through the CREATE2 deployer (data = salt ++ init code); returns its address. */
export async function deploySettlement (publicClient: PublicClient<Transport, Chain>, w: Wallet, salt: Hex): Promise<Address> {
  const address = getContractAddress({ opcode: 'CREATE2', from: CREATE2_DEPLOYER, salt, bytecode: settlementBytecode })
  if ((await publicClient.getCode({ address })) === undefined) {
    const hash = await w.sendTransaction({ to: CREATE2_DEPLOYER, data: concat([salt, settlementBytecode]), gas: 6_000_000n })
    await publicClient.waitForTransactionReceipt({ hash })
  }
  const code = await publicClient.getCode({ address })
  if (code === undefined || code === '0x') throw new Error(`no Settlement code at ${address} after the CREATE2 deploy`)
  return address
}

/** The payer's EIP-712 signature over `v` (viem signTypedData, voucher.ts typed data). */
export async function signVoucher (payer: Wallet, v: Voucher, domain: VoucherDomain): Promise<SignedVoucher> {
  const signature = await payer.account.signTypedData!(voucherTypedData(v, domain))
  return { voucher: v, signature }
}

/** The contract's tuple for a voucher (redeem's first argument). */
export function voucherArg (v: Voucher): { escrowId: Hex, provider: Address, cumulative: bigint, receiptsRoot: Hex, receiptCount: number } {
  return { escrowId: v.escrowId, provider: v.provider, cumulative: v.cumulative, receiptsRoot: v.receiptsRoot, receiptCount: v.receiptCount }
}

export function redeemArgs (svs: SignedVoucher[]): [ReturnType<typeof voucherArg>[], Hex[]] {
  return [svs.map(s => voucherArg(s.voucher)), svs.map(s => s.signature)]
}

export interface Revert { name: string, args: readonly unknown[] }

/** The custom error a call reverted with ({ name: 'did not revert' } when it succeeded). */
export async function revertOf (p: Promise<unknown>): Promise<Revert> {
  try { await p } catch (err) {
    const r = err instanceof BaseError ? err.walk(e => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null : null
    if (r?.data?.errorName !== undefined) return { name: r.data.errorName, args: r.data.args ?? [] }
    return { name: `not a contract revert: ${(err as Error).message.slice(0, 300)}`, args: [] }
  }
  return { name: 'did not revert', args: [] }
}

/** Simulates a call from `w` (eth_call at the latest block) and returns its revert. */
export async function simulateRevert (f: ChainFixture, w: Wallet, functionName: string, args: readonly unknown[], value?: bigint): Promise<Revert> {
  return await revertOf(f.publicClient.simulateContract({ address: f.contract, abi: settlementAbi, functionName, args, value, account: w.account } as never))
}
