// The embedded chain as an EIP-1193 provider: the JSON-RPC methods viem uses for reading,
// sending and waiting on transactions, answered in the shapes a node answers them in.
import { bytesToHex } from '@ethereumjs/util'
import { createTxFromRLP } from '@ethereumjs/tx'
import { EmbeddedChain, RpcError, type CallRequest, type Hex, type StoredBlock, type StoredReceipt } from './chain.js'

export interface Eip1193Provider {
  request: (args: { method: string, params?: unknown }) => Promise<unknown>
}

const q = (n: number | bigint | string): Hex => `0x${BigInt(n).toString(16)}`

export function embeddedProvider (chain: EmbeddedChain): Eip1193Provider {
  return {
    request: async ({ method, params }) => await chain.serialize(async () => await handle(chain, method, (params ?? []) as unknown[]))
  }
}

async function handle (chain: EmbeddedChain, method: string, p: unknown[]): Promise<unknown> {
  switch (method) {
    case 'eth_chainId': return q(chain.chainId)
    case 'net_version': return String(chain.chainId)
    case 'eth_blockNumber': return q(chain.head.number)
    case 'eth_gasPrice': return q(chain.baseFeePerGas)
    case 'eth_maxPriorityFeePerGas': return '0x0'
    case 'eth_accounts': return []
    case 'eth_syncing': return false
    case 'eth_getBalance': return q(await chain.balanceOf(p[0] as Hex))
    case 'eth_getTransactionCount': return q(await chain.nonceOf(p[0] as Hex))
    case 'eth_getCode': return bytesToHex(await chain.codeOf(p[0] as Hex))
    case 'eth_sendRawTransaction': return await chain.sendRawTransaction(p[0] as Hex)
    case 'eth_call': {
      const res = await chain.call(callRequest(p[0]))
      if (res.error === 'revert') throw new RpcError(3, 'execution reverted', bytesToHex(res.returnValue) as Hex)
      if (res.error !== undefined) throw new RpcError(-32000, `execution failed: ${res.error}`)
      return bytesToHex(res.returnValue)
    }
    case 'eth_estimateGas': return q(await chain.estimateGas(callRequest(p[0])))
    case 'eth_getTransactionReceipt': {
      const r = chain.getReceipt(p[0] as string)
      return r === undefined ? null : formatReceipt(r)
    }
    case 'eth_getTransactionByHash': return formatTransaction(chain, p[0] as string)
    case 'eth_getBlockByNumber': {
      const b = chain.getBlock(blockNumberOf(chain, p[0]))
      return b === undefined ? null : formatBlock(b)
    }
    case 'eth_getBlockByHash': {
      const b = chain.getBlockByHash(p[0] as string)
      return b === undefined ? null : formatBlock(b)
    }
    case 'eth_getLogs': {
      const f = (p[0] ?? {}) as { fromBlock?: string, toBlock?: string, address?: string | string[], topics?: Array<string | string[] | null>, blockHash?: string }
      let from: number, to: number
      if (f.blockHash !== undefined) {
        const b = chain.getBlockByHash(f.blockHash)
        if (b === undefined) return []
        from = to = b.number
      } else {
        from = blockNumberOf(chain, f.fromBlock ?? 'latest')
        to = blockNumberOf(chain, f.toBlock ?? 'latest')
      }
      const addresses = f.address === undefined ? undefined : Array.isArray(f.address) ? f.address : [f.address]
      return chain.getLogs(from, to, addresses)
        .filter(l => topicsMatch(l.topics, f.topics ?? []))
        .map(l => ({ ...formatLog(l, chain.getBlock(l.blockNumber)?.hash ?? '0x'), blockNumber: q(l.blockNumber), transactionHash: l.transactionHash }))
    }
    case 'evm_increaseTime': return q(chain.increaseTime(Number(p[0])))
    default: throw new RpcError(-32601, `method ${method} is not supported by the embedded chain`)
  }
}

function callRequest (x: unknown): CallRequest {
  const t = (x ?? {}) as { from?: Hex, to?: Hex, data?: Hex, input?: Hex, value?: Hex, gas?: Hex }
  return {
    from: t.from,
    to: t.to ?? undefined,
    data: t.data ?? t.input,
    value: t.value === undefined ? undefined : BigInt(t.value),
    gas: t.gas === undefined ? undefined : BigInt(t.gas)
  }
}

function blockNumberOf (chain: EmbeddedChain, tag: unknown): number {
  if (tag === undefined || tag === 'latest' || tag === 'pending' || tag === 'safe' || tag === 'finalized') return chain.head.number
  if (tag === 'earliest') return 0
  if (typeof tag === 'string') return Number(BigInt(tag))
  throw new RpcError(-32602, `bad block tag ${String(tag)}`)
}

function topicsMatch (topics: Hex[], filter: Array<string | string[] | null>): boolean {
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i]
    if (f === null || f === undefined) continue
    const t = topics[i]?.toLowerCase()
    if (t === undefined) return false
    if (Array.isArray(f) ? !f.some(x => x.toLowerCase() === t) : f.toLowerCase() !== t) return false
  }
  return true
}

function formatLog (l: { address: Hex, topics: Hex[], data: Hex, logIndex: number }, blockHash: string): Record<string, unknown> {
  return { address: l.address, topics: l.topics, data: l.data, logIndex: q(l.logIndex), transactionIndex: '0x0', blockHash, removed: false }
}

function formatReceipt (r: StoredReceipt): Record<string, unknown> {
  return {
    transactionHash: r.transactionHash,
    transactionIndex: '0x0',
    blockHash: r.blockHash,
    blockNumber: q(r.blockNumber),
    from: r.from,
    to: r.to,
    contractAddress: r.contractAddress,
    cumulativeGasUsed: q(r.gasUsed),
    gasUsed: q(r.gasUsed),
    effectiveGasPrice: q(r.effectiveGasPrice),
    status: r.status === 1 ? '0x1' : '0x0',
    type: q(r.type),
    logsBloom: r.logsBloom,
    logs: r.logs.map(l => ({ ...formatLog(l, r.blockHash), blockNumber: q(r.blockNumber), transactionHash: r.transactionHash }))
  }
}

function formatBlock (b: StoredBlock): Record<string, unknown> {
  return {
    number: q(b.number),
    hash: b.hash,
    parentHash: b.parentHash,
    timestamp: q(b.timestamp),
    stateRoot: b.stateRoot,
    gasUsed: q(b.gasUsed),
    gasLimit: q(b.gasLimit),
    baseFeePerGas: q(b.baseFeePerGas),
    logsBloom: b.logsBloom,
    miner: '0x0000000000000000000000000000000000000000',
    difficulty: '0x0',
    totalDifficulty: '0x0',
    extraData: '0x',
    nonce: '0x0000000000000000',
    mixHash: '0x' + '00'.repeat(32),
    sha3Uncles: '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347',
    size: '0x0',
    transactions: b.txHash === null ? [] : [b.txHash],
    uncles: [],
    withdrawals: []
  }
}

function formatTransaction (chain: EmbeddedChain, hash: string): Record<string, unknown> | null {
  const t = chain.getTransaction(hash)
  if (t === undefined) return null
  const tx = createTxFromRLP(t.raw, { common: chain.common })
  const block = chain.getBlock(t.blockNumber)
  const j = tx.toJSON() as Record<string, unknown>
  return {
    ...j,
    hash: bytesToHex(tx.hash()),
    from: tx.getSenderAddress().toString(),
    to: tx.to?.toString() ?? null,
    input: j.data ?? '0x',
    gas: j.gasLimit,
    type: q(tx.type),
    blockNumber: q(t.blockNumber),
    blockHash: block?.hash ?? null,
    transactionIndex: '0x0'
  }
}

