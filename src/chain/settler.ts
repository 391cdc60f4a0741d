// Moves one outbox batch forward, reading the chain before every send: a batch whose root is
// already on chain is confirmed without sending; a signed tx that may be in flight is
// re-broadcast unchanged (same nonce, same hash) rather than replaced. Together with the
// contract's "same batch id never pays twice" this gives exactly one settlement per batch.
import { parseEventLogs, type TransactionReceipt } from 'viem'
import { settlementAbi } from './artifacts/settlement.js'
import type { ChainConnection } from './client.js'
import type { Address, Hex } from './config.js'
import { isChainErrorCode, toChainError } from './errors.js'
import type { Outbox, OutboxEntry } from './outbox.js'
import type { SendQueue } from './sender.js'

const ZERO32 = `0x${'00'.repeat(32)}`

export interface SettlerDeps {
  conn: ChainConnection
  outbox: Outbox
  queue: SendQueue
  contract: Address
  confirmations: number
  now: () => number
  /** Fault injection for tests: called with the tx written down as sent, before its broadcast. */
  beforeBroadcast?: (batchId: Hex, txHash: Hex) => void
  /** Fault injection for tests: called right after a settlement tx was broadcast. */
  afterBroadcast?: (batchId: Hex, txHash: Hex) => void
}

export type AdvanceResult = 'confirmed' | 'sent' | 'waiting' | 'conflict'

export async function settledRootOf (conn: ChainConnection, contract: Address, batchId: Hex): Promise<Hex> {
  try {
    return await conn.publicClient.readContract({ address: contract, abi: settlementAbi, functionName: 'settledRoot', args: [batchId] })
  } catch (err) {
    throw toChainError(err, { action: 'reading settledRoot', url: conn.url })
  }
}

export async function advanceBatch (d: SettlerDeps, entry: OutboxEntry): Promise<AdvanceResult> {
  if (entry.state === 'sent' && entry.txHash !== undefined) {
    const receipt = await receiptOf(d, entry.txHash)
    if (receipt !== undefined) {
      if (receipt.status === 'success') return await confirmIfDeep(d, entry, receipt)
      // Mined but reverted (e.g. escrow ran out): unless the batch landed some other way, sign again later.
      const onChain = await settledRootOf(d.conn, d.contract, entry.batchId)
      if (onChain.toLowerCase() === entry.root.toLowerCase()) return await confirmFromChain(d, entry)
      d.outbox.markBuilt(entry.batchId, `tx ${entry.txHash} reverted`, d.now())
      return 'waiting'
    }
  }
  const onChain = await settledRootOf(d.conn, d.contract, entry.batchId)
  if (onChain.toLowerCase() === entry.root.toLowerCase()) return await confirmFromChain(d, entry)
  if (onChain !== ZERO32) {
    d.outbox.markConflict(entry.batchId, onChain, d.now())
    return 'conflict'
  }
  if (entry.state === 'sent' && entry.rawTx !== undefined && entry.txHash !== undefined && entry.nonce !== undefined) {
    // Possibly in flight (or lost with a crashed node): send the very same signed tx again.
    try {
      await d.queue.broadcast({ hash: entry.txHash, raw: entry.rawTx, nonce: entry.nonce, gas: 0n }, 're-broadcasting a settlement')
      const receipt = await receiptOf(d, entry.txHash)
      return receipt === undefined ? 'sent' : await advanceBatch(d, { ...entry })
    } catch (err) {
      if (!isChainErrorCode(err, 'NONCE_TOO_LOW')) throw err
      // Its nonce went to another tx and it was not mined: sign a fresh one below.
      const receipt = await receiptOf(d, entry.txHash)
      if (receipt !== undefined) return await advanceBatch(d, entry)
      d.outbox.markBuilt(entry.batchId, 'nonce taken by another transaction', d.now())
    }
  }
  return await signAndSend(d, entry)
}

async function signAndSend (d: SettlerDeps, entry: OutboxEntry): Promise<AdvanceResult> {
  const txHash = await d.queue.run(async () => {
    const tx = await d.queue.signCall({
      address: d.contract,
      abi: settlementAbi,
      functionName: 'settleBatch',
      args: [entry.batchId, entry.chainJobId, entry.root, entry.receiptCount, entry.payouts.map(p => p.provider), entry.payouts.map(p => p.amount)],
      action: `settling batch ${entry.batchId.slice(0, 10)}`
    })
    // Write-ahead: once this row says `sent`, a crash can only lead to re-broadcasting this tx.
    d.outbox.markSent(entry.batchId, tx.hash, tx.raw, tx.nonce, d.now())
    d.beforeBroadcast?.(entry.batchId, tx.hash)
    await d.queue.broadcast(tx, 'broadcasting a settlement')
    d.afterBroadcast?.(entry.batchId, tx.hash)
    return tx.hash
  })
  const receipt = await receiptOf(d, txHash)
  if (receipt === undefined) return 'sent'
  const now = d.outbox.get(entry.batchId)
  return now === undefined ? 'sent' : await advanceBatch(d, now)
}

async function receiptOf (d: SettlerDeps, hash: Hex): Promise<TransactionReceipt | undefined> {
  try {
    return await d.conn.publicClient.getTransactionReceipt({ hash })
  } catch (err) {
    if ((err as Error).name === 'TransactionReceiptNotFoundError') return undefined
    throw toChainError(err, { action: 'reading a transaction receipt', url: d.conn.url })
  }
}

async function confirmIfDeep (d: SettlerDeps, entry: OutboxEntry, receipt: TransactionReceipt, lookUp = true): Promise<AdvanceResult> {
  let head: bigint
  try {
    head = await d.conn.publicClient.getBlockNumber({ cacheTime: 0 })
  } catch (err) {
    throw toChainError(err, { action: 'reading the block number', url: d.conn.url })
  }
  if (head - receipt.blockNumber + 1n < BigInt(d.confirmations)) return 'sent'
  const logs = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: ['ProviderPaid', 'PayoutWithheld', 'BatchSettled'] })
  const mine = logs.filter(l => l.args.batchId.toLowerCase() === entry.batchId.toLowerCase())
  const settledHere = mine.some(l => l.eventName === 'BatchSettled')
  if (!settledHere) {
    // Our tx was a no-op: an earlier tx settled this batch. Confirm from the chain's record.
    if (lookUp) return await confirmFromChain(d, entry)
    d.outbox.markConfirmed(entry.batchId, { txHash: receipt.transactionHash }, d.now())
    return 'confirmed'
  }
  d.outbox.markConfirmed(entry.batchId, {
    txHash: receipt.transactionHash,
    blockNumber: Number(receipt.blockNumber),
    gasUsed: receipt.gasUsed,
    paid: mine.filter(l => l.eventName === 'ProviderPaid').map(l => ({ provider: (l.args as { provider: Address }).provider, amount: (l.args as { amount: bigint }).amount })),
    withheld: mine.filter(l => l.eventName === 'PayoutWithheld').map(l => ({ provider: (l.args as { provider: Address }).provider, amount: (l.args as { amount: bigint }).amount }))
  }, d.now())
  return 'confirmed'
}

/** The batch is on chain through a tx we did not watch land: find that tx by its event. */
async function confirmFromChain (d: SettlerDeps, entry: OutboxEntry): Promise<AdvanceResult> {
  try {
    const events = await d.conn.publicClient.getContractEvents({ address: d.contract, abi: settlementAbi, eventName: 'BatchSettled', args: { batchId: entry.batchId }, fromBlock: 0n })
    const hash = events[0]?.transactionHash
    const receipt = hash == null ? undefined : await receiptOf(d, hash)
    if (receipt !== undefined && receipt.status === 'success') return await confirmIfDeep(d, entry, receipt, false)
  } catch {
    // Nodes may refuse wide log queries; the root on chain is proof enough.
  }
  d.outbox.markConfirmed(entry.batchId, { txHash: entry.txHash }, d.now())
  return 'confirmed'
}
