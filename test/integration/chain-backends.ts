// The two chains every chain test runs against: the embedded EVM and anvil (127.0.0.1, free
// port), each with viem clients for the dev keys. `stop()` always ends anvil.
import { createPublicClient, createWalletClient, custom, http, type Account, type Chain, type PublicClient, type Transport, type WalletClient } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { DEV_PRIVATE_KEYS, EmbeddedChain, dbcChain, embeddedProvider, startAnvil, type AnvilHandle } from '../../src/chain/index.js'

export type BackendKind = 'embedded' | 'anvil'

export interface Backend {
  kind: BackendKind
  chain: Chain
  publicClient: PublicClient<Transport, Chain>
  wallet: (devKeyIndex: number) => WalletClient<Transport, Chain, Account>
  /** Moves the chain clock forward (evm_increaseTime), then mines on the next tx. */
  increaseTime: (seconds: number) => Promise<void>
  anvil?: AnvilHandle
  embedded?: EmbeddedChain
  stop: () => Promise<void>
}

export async function openBackend (kind: BackendKind): Promise<Backend> {
  const chain = dbcChain()
  let transport: Transport
  let anvil: AnvilHandle | undefined
  let embedded: EmbeddedChain | undefined
  if (kind === 'embedded') {
    embedded = await EmbeddedChain.open({ path: ':memory:' })
    transport = custom(embeddedProvider(embedded), { retryCount: 0 })
  } else {
    anvil = await startAnvil()
    transport = http(anvil.url, { retryCount: 0, timeout: 10_000 })
  }
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 })
  return {
    kind,
    chain,
    publicClient,
    wallet: (i) => createWalletClient({ chain, transport, account: privateKeyToAccount(DEV_PRIVATE_KEYS[i]), pollingInterval: 20 }),
    increaseTime: async (s) => { await publicClient.request({ method: 'evm_increaseTime' as never, params: [s] as never }) },
    anvil,
    embedded,
    stop: async () => { embedded?.close(); await anvil?.stop() }
  }
}
