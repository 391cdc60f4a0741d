// For tests that speak /dbc/task by hand (a raw libp2p identity, not a submitter node): the
// escrow a provider wants before it works. Deposits for `jobId` on the network's shared anvil from
// an anvil dev key and returns the PaymentTerms that lease requests and leases name.
import { createPublicClient, createWalletClient, http, type Hex } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import type { LocalNetwork, LocalNode } from '../../demo/network.js'
import { DEV_PRIVATE_KEYS, dbcChain, settlementAbi } from '../../src/chain/index.js'
import { escrowKeyOf } from '../../src/core/settlement/credit.js'
import { jobHash } from '../../src/core/settlement/batch.js'
import { bytesFromHex } from '../../src/core/settlement/hex.js'
import type { VoucherDomain } from '../../src/core/settlement/voucher.js'
import { leaseAuthTypedData } from '../../src/core/settlement/lease-auth.js'
import type { dbc } from '../../src/wire/gen/wire.js'

export interface ProviderChain { chainId: number, contract: Hex, account: Hex, rpc: string, domain: VoucherDomain }

/** The provider's chain as its node reports it, once its contract is known. */
export async function providerChain (net: LocalNetwork, provider: LocalNode, timeoutMs = 60_000): Promise<ProviderChain> {
  const { rpc } = await net.chain()
  const end = Date.now() + timeoutMs
  for (;;) {
    const s = await provider.api.call<{ chainId: number, contract?: Hex, account: Hex }>('GET', '/v1/chain/status').catch(() => undefined)
    if (s?.contract !== undefined) return { chainId: s.chainId, contract: s.contract, account: s.account, rpc, domain: { chainId: s.chainId, verifyingContract: s.contract } }
    if (Date.now() > end) throw new Error(`${provider.spec.name} has no chain contract after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

/**
 * Deposits `wei` for `jobId` from `payer` (default: anvil dev key 1; the default one-hour dispute
 * window providers ask for) and returns the job's payment terms, authorising `holder` (a libp2p
 * peer id) to lease against them when given.
 */
export async function fundJob (chain: ProviderChain, jobId: Uint8Array, wei = 10n ** 18n, payer: PrivateKeyAccount = privateKeyToAccount(DEV_PRIVATE_KEYS[1]), holder?: Uint8Array): Promise<dbc.task.v1.IPaymentTerms> {
  const evm = dbcChain(chain.chainId, chain.rpc)
  const wallet = createWalletClient({ chain: evm, transport: http(chain.rpc), account: payer })
  const reader = createPublicClient({ chain: evm, transport: http(chain.rpc) })
  const key = escrowKeyOf(jobId, payer.address)
  const hash = await wallet.writeContract({ address: chain.contract, abi: settlementAbi, functionName: 'deposit', args: [jobHash(jobId), BigInt(Math.floor(Date.now() / 1000) + 3600), 3600], value: wei } as never)
  const r = await reader.waitForTransactionReceipt({ hash })
  if (r.status !== 'success') throw new Error(`the deposit for job ${key} reverted`)
  const terms = paymentTerms(chain, jobId, payer.address)
  return holder === undefined ? terms : { ...terms, holderAuth: await holderAuth(chain, jobId, holder, payer) }
}

/** The payer's LeaseAuth letting `holder` lease against `jobId`'s escrow (PaymentTerms.holder_auth). */
export async function holderAuth (chain: ProviderChain, jobId: Uint8Array, holder: Uint8Array, payer: PrivateKeyAccount): Promise<Uint8Array> {
  return bytesFromHex(await payer.signTypedData(leaseAuthTypedData(escrowKeyOf(jobId, payer.address), holder, chain.domain)))
}

/** The PaymentTerms naming `jobId`'s escrow on `chain`, paid by `payer`. */
export function paymentTerms (chain: ProviderChain, jobId: Uint8Array, payer: Hex): dbc.task.v1.IPaymentTerms {
  return { chainId: chain.chainId, contract: bytesFromHex(chain.contract), chainJobId: bytesFromHex(escrowKeyOf(jobId, payer)), payer: bytesFromHex(payer) }
}
