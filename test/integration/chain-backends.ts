// The two chains every chain test runs against: the embedded EVM and anvil (127.0.0.1, free
// port), each with viem clients for the dev keys; and Bridges on anvil for several nodes (each
// its own key and store, all on one contract). `stop()` always ends anvil.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPublicClient, createWalletClient, custom, http, type Account, type Chain, type PublicClient, type Transport, type WalletClient } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { Bridge, DEV_PRIVATE_KEYS, EmbeddedChain, dbcChain, embeddedProvider, startAnvil, type AnvilHandle, type BridgeInit, type Hex } from '../../src/chain/index.js'
import { openStore, type Store } from '../../src/store/db.js'

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

/** Nodes on one anvil: each a Bridge with its own key, store and data dir, on one contract. */
export class Nodes {
  private readonly made: Array<{ bridge: Bridge, store: Store, dir: string }> = []
  contract?: Hex

  constructor (readonly url: string) {}

  /** A started Bridge for `key` (the first one deploys the contract the others use). */
  async node (key: Hex, init: Partial<BridgeInit> = {}): Promise<Bridge> {
    const dir = mkdtempSync(join(tmpdir(), 'dbc-node-'))
    const store = openStore(join(dir, 'node.sqlite'))
    const bridge = new Bridge({ store, dataDir: dir, chain: { kind: 'rpc', url: this.url, chainId: 19880818 }, privateKey: key, contract: this.contract, confirmations: 1, tickMs: 0, requestTimeoutMs: 5000, ...init })
    await bridge.start()
    this.contract ??= await bridge.ready()
    this.made.push({ bridge, store, dir })
    return bridge
  }

  async stop (): Promise<void> {
    for (const m of this.made) {
      await m.bridge.stop().catch(() => {})
      m.store.close()
      rmSync(m.dir, { recursive: true, force: true })
    }
    this.made.length = 0
  }
}
