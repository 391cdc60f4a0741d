// An EVM chain inside the process (@ethereumjs/vm, Shanghai), one block per transaction, with
// blocks, receipts, logs and state written to a sqlite file in one transaction per block, so a
// kill -9 at any point leaves either the block and its state, or neither. It speaks EIP-1193
// (`request({ method, params })`, see rpc.ts) so the same viem code talks to it and to a node.
import { DatabaseSync } from 'node:sqlite'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { createCustomCommon, Hardfork, Mainnet, type Common } from '@ethereumjs/common'
import { createVM, runTx, type VM, type RunTxResult } from '@ethereumjs/vm'
import { MerkleStateManager } from '@ethereumjs/statemanager'
import { MerklePatriciaTrie } from '@ethereumjs/mpt'
import { createBlock, type Block } from '@ethereumjs/block'
import { createTx, createTxFromRLP, type TypedTransaction } from '@ethereumjs/tx'
import { Address, bytesToHex, createAccount, createAddressFromString, hexToBytes, ValueEncoding } from '@ethereumjs/util'
import { privateKeyToAddress } from 'viem/accounts'
import { PersistedTrieDB } from './state-db.js'
import { DBC_CHAIN_ID, DEV_BALANCE_WEI, DEV_PRIVATE_KEYS } from '../dev-keys.js'

export type Hex = `0x${string}`

export interface EmbeddedChainInit {
  /** sqlite file holding the chain; ':memory:' for a throwaway chain. */
  path: string
  chainId?: number
  /** Extra accounts funded at genesis (address → wei), besides the dev keys. */
  fund?: Record<string, bigint>
  blockGasLimit?: bigint
  baseFeePerGas?: bigint
  /** Wall clock in ms (block timestamps); injectable for tests. */
  now?: () => number
}

export interface StoredLog { address: Hex, topics: Hex[], data: Hex, logIndex: number }
export interface StoredReceipt {
  transactionHash: Hex
  blockNumber: number
  blockHash: Hex
  from: Hex
  to: Hex | null
  contractAddress: Hex | null
  gasUsed: string
  effectiveGasPrice: string
  status: 0 | 1
  type: number
  logs: StoredLog[]
  logsBloom: Hex
}
export interface StoredBlock {
  number: number
  hash: Hex
  parentHash: Hex
  timestamp: number
  stateRoot: Hex
  gasUsed: string
  gasLimit: string
  baseFeePerGas: string
  logsBloom: Hex
  txHash: Hex | null
}

/** A JSON-RPC style error (code 3 + data for reverts), as nodes return them. */
export class RpcError extends Error {
  override name = 'RpcError'
  constructor (readonly code: number, message: string, readonly data?: Hex) { super(message) }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trie (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txs (hash TEXT PRIMARY KEY, block_number INTEGER NOT NULL, sender TEXT NOT NULL, nonce INTEGER NOT NULL, raw BLOB NOT NULL, receipt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, address TEXT NOT NULL, topics TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (block_number, log_index));
CREATE INDEX IF NOT EXISTS logs_address ON logs (address, block_number);
`

export class EmbeddedChain {
  readonly chainId: number
  readonly common: Common
  readonly blockGasLimit: bigint
  readonly baseFeePerGas: bigint
  private readonly db: DatabaseSync
  private readonly trieDb: PersistedTrieDB
  private readonly vm: VM
  private readonly now: () => number
  private headBlock: StoredBlock
  private timeOffsetSec = 0
  private lock: Promise<unknown> = Promise.resolve()
  private closed = false

  private constructor (db: DatabaseSync, trieDb: PersistedTrieDB, vm: VM, common: Common, head: StoredBlock, init: Required<Pick<EmbeddedChainInit, 'blockGasLimit' | 'baseFeePerGas' | 'now'>> & { chainId: number }) {
    this.db = db
    this.trieDb = trieDb
    this.vm = vm
    this.common = common
    this.headBlock = head
    this.chainId = init.chainId
    this.blockGasLimit = init.blockGasLimit
    this.baseFeePerGas = init.baseFeePerGas
    this.now = init.now
  }

  /** Opens the chain in `init.path`, creating its genesis (dev keys funded) the first time. */
  static async open (init: EmbeddedChainInit): Promise<EmbeddedChain> {
    const chainId = init.chainId ?? DBC_CHAIN_ID
    if (init.path !== ':memory:') mkdirSync(dirname(init.path), { recursive: true })
    const db = new DatabaseSync(init.path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;')
    db.exec(SCHEMA)
    const stored = (db.prepare("SELECT value FROM meta WHERE key = 'chainId'").get() as { value: string } | undefined)?.value
    if (stored !== undefined && Number(stored) !== chainId) {
      db.close()
      throw new RangeError(`the embedded chain in ${init.path} has chain id ${stored}, not ${chainId}`)
    }
    const common = createCustomCommon({ chainId, name: 'dbc-embedded' }, Mainnet, { hardfork: Hardfork.Shanghai })
    const trieDb = PersistedTrieDB.load(db)
    const trie = new MerklePatriciaTrie({ db: trieDb, useKeyHashing: true, valueEncoding: ValueEncoding.Bytes, common })
    const stateManager = new MerkleStateManager({ trie, common })
    const vm = await createVM({ common, stateManager })
    const opts = { chainId, blockGasLimit: init.blockGasLimit ?? 30_000_000n, baseFeePerGas: init.baseFeePerGas ?? 1_000_000_000n, now: init.now ?? Date.now }
    const headRow = db.prepare('SELECT json FROM blocks ORDER BY number DESC LIMIT 1').get() as { json: string } | undefined
    let head: StoredBlock
    if (headRow === undefined) {
      head = await EmbeddedChain.genesis(db, trieDb, vm, common, opts, init.fund ?? {})
    } else {
      head = JSON.parse(headRow.json) as StoredBlock
      await stateManager.setStateRoot(hexToBytes(head.stateRoot))
    }
    return new EmbeddedChain(db, trieDb, vm, common, head, opts)
  }

  private static async genesis (db: DatabaseSync, trieDb: PersistedTrieDB, vm: VM, common: Common, opts: { chainId: number, blockGasLimit: bigint, baseFeePerGas: bigint, now: () => number }, fund: Record<string, bigint>): Promise<StoredBlock> {
    const alloc = new Map<string, bigint>()
    for (const k of DEV_PRIVATE_KEYS) alloc.set(privateKeyToAddress(k).toLowerCase(), DEV_BALANCE_WEI)
    for (const [a, v] of Object.entries(fund)) alloc.set(a.toLowerCase(), (alloc.get(a.toLowerCase()) ?? 0n) + v)
    await vm.stateManager.checkpoint()
    for (const [addr, balance] of alloc) await vm.stateManager.putAccount(createAddressFromString(addr), createAccount({ balance }))
    await vm.stateManager.commit()
    const stateRoot = await vm.stateManager.getStateRoot()
    const block = createBlock({ header: { number: 0n, timestamp: BigInt(Math.floor(opts.now() / 1000)), gasLimit: opts.blockGasLimit, baseFeePerGas: opts.baseFeePerGas, stateRoot } }, { common, setHardfork: false })
    const head: StoredBlock = {
      number: 0,
      hash: bytesToHex(block.hash()) as Hex,
      parentHash: bytesToHex(block.header.parentHash) as Hex,
      timestamp: Number(block.header.timestamp),
      stateRoot: bytesToHex(stateRoot) as Hex,
      gasUsed: '0',
      gasLimit: opts.blockGasLimit.toString(),
      baseFeePerGas: opts.baseFeePerGas.toString(),
      logsBloom: bytesToHex(block.header.logsBloom) as Hex,
      txHash: null
    }
    db.exec('BEGIN IMMEDIATE')
    try {
      trieDb.flushTo(db)
      db.prepare('INSERT INTO blocks (number, hash, json) VALUES (?, ?, ?)').run(0, head.hash, JSON.stringify(head))
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('chainId', ?)").run(String(opts.chainId))
      db.exec('COMMIT')
    } catch (err) {
      db.exec('ROLLBACK')
      throw err
    }
    return head
  }

  get head (): StoredBlock { return this.headBlock }

  /** Runs `fn` after everything queued before it: the VM is not re-entrant. */
  serialize<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(async () => {
      if (this.closed) throw new RpcError(-32000, 'the embedded chain is closed')
      return await fn()
    })
    this.lock = run.catch(() => {})
    return run
  }

  async balanceOf (address: Hex): Promise<bigint> {
    return (await this.vm.stateManager.getAccount(createAddressFromString(address)))?.balance ?? 0n
  }

  async nonceOf (address: Hex): Promise<bigint> {
    return (await this.vm.stateManager.getAccount(createAddressFromString(address)))?.nonce ?? 0n
  }

  async codeOf (address: Hex): Promise<Uint8Array> {
    return await this.vm.stateManager.getCode(createAddressFromString(address))
  }

  increaseTime (seconds: number): number {
    this.timeOffsetSec += seconds
    return this.timeOffsetSec
  }

  private nextBlockHeader (): { number: bigint, parentHash: Uint8Array, timestamp: bigint, gasLimit: bigint, baseFeePerGas: bigint, coinbase: Address } {
    const nowSec = Math.floor(this.now() / 1000) + this.timeOffsetSec
    return {
      number: BigInt(this.headBlock.number + 1),
      parentHash: hexToBytes(this.headBlock.hash),
      timestamp: BigInt(Math.max(this.headBlock.timestamp, nowSec)),
      gasLimit: this.blockGasLimit,
      baseFeePerGas: this.baseFeePerGas,
      coinbase: new Address(new Uint8Array(20))
    }
  }

  /** Decodes, checks and mines a signed transaction in its own block. Returns its hash. */
  async sendRawTransaction (raw: Hex): Promise<Hex> {
    let tx: TypedTransaction
    try {
      tx = createTxFromRLP(hexToBytes(raw), { common: this.common })
    } catch (err) {
      throw new RpcError(-32602, `invalid transaction: ${(err as Error).message.split('\n')[0]}`)
    }
    if (!tx.isSigned()) throw new RpcError(-32602, 'transaction is not signed')
    const hash = bytesToHex(tx.hash()) as Hex
    if (this.db.prepare('SELECT 1 FROM txs WHERE hash = ?').get(hash) !== undefined) return hash // already mined: idempotent
    if (tx.supports(1559) && (tx as { maxFeePerGas: bigint }).maxFeePerGas < this.baseFeePerGas) throw new RpcError(-32000, 'max fee per gas less than block base fee')
    const sender = tx.getSenderAddress()
    const nonce = (await this.vm.stateManager.getAccount(sender))?.nonce ?? 0n
    if (tx.nonce < nonce) throw new RpcError(-32000, `nonce too low: next nonce ${nonce}, tx nonce ${tx.nonce}`)
    if (tx.nonce > nonce) throw new RpcError(-32000, `nonce too high: next nonce ${nonce}, tx nonce ${tx.nonce} (the embedded chain has no mempool)`)
    if (tx.gasLimit > this.blockGasLimit) throw new RpcError(-32000, 'exceeds block gas limit')
    const header = this.nextBlockHeader()
    const execBlock = createBlock({ header }, { common: this.common, setHardfork: false })
    let result: RunTxResult
    try {
      result = await runTx(this.vm, { tx, block: execBlock })
    } catch (err) {
      const msg = (err as Error).message
      if (/enough funds|balance/i.test(msg)) throw new RpcError(-32000, 'insufficient funds for gas * price + value')
      throw new RpcError(-32000, `transaction rejected: ${msg.split('\n')[0]}`)
    }
    await this.commitBlock(tx, header, result, raw, hash, sender)
    return hash
  }

  private async commitBlock (tx: TypedTransaction, header: ReturnType<EmbeddedChain['nextBlockHeader']>, result: RunTxResult, raw: Hex, hash: Hex, sender: Address): Promise<void> {
    const stateRoot = await this.vm.stateManager.getStateRoot()
    const gasUsed = result.totalGasSpent
    const block: Block = createBlock({ header: { ...header, stateRoot, gasUsed, logsBloom: result.bloom.bitvector }, transactions: [tx] }, { common: this.common, setHardfork: false })
    const blockHash = bytesToHex(block.hash()) as Hex
    const number = Number(header.number)
    const priority = tx.supports(1559) ? (tx as { maxPriorityFeePerGas: bigint }).maxPriorityFeePerGas : 0n
    const maxFee = tx.supports(1559) ? (tx as { maxFeePerGas: bigint }).maxFeePerGas : (tx as { gasPrice: bigint }).gasPrice
    const effectiveGasPrice = tx.supports(1559) ? minBig(maxFee, this.baseFeePerGas + priority) : maxFee
    const logs: StoredLog[] = (result.receipt.logs ?? []).map(([address, topics, data], i) => ({ address: bytesToHex(address) as Hex, topics: topics.map(t => bytesToHex(t) as Hex), data: bytesToHex(data) as Hex, logIndex: i }))
    const receipt: StoredReceipt = {
      transactionHash: hash,
      blockNumber: number,
      blockHash,
      from: sender.toString() as Hex,
      to: tx.to === undefined ? null : tx.to.toString() as Hex,
      contractAddress: result.createdAddress === undefined ? null : result.createdAddress.toString() as Hex,
      gasUsed: gasUsed.toString(),
      effectiveGasPrice: effectiveGasPrice.toString(),
      status: result.execResult.exceptionError === undefined ? 1 : 0,
      type: tx.type,
      logs,
      logsBloom: bytesToHex(result.bloom.bitvector) as Hex
    }
    const stored: StoredBlock = {
      number,
      hash: blockHash,
      parentHash: this.headBlock.hash,
      timestamp: Number(header.timestamp),
      stateRoot: bytesToHex(stateRoot) as Hex,
      gasUsed: gasUsed.toString(),
      gasLimit: this.blockGasLimit.toString(),
      baseFeePerGas: this.baseFeePerGas.toString(),
      logsBloom: receipt.logsBloom,
      txHash: hash
    }
    const db = this.db
    db.exec('BEGIN IMMEDIATE')
    try {
      this.trieDb.flushTo(db)
      db.prepare('INSERT INTO blocks (number, hash, json) VALUES (?, ?, ?)').run(number, blockHash, JSON.stringify(stored))
      db.prepare('INSERT INTO txs (hash, block_number, sender, nonce, raw, receipt) VALUES (?, ?, ?, ?, ?, ?)').run(hash, number, receipt.from.toLowerCase(), Number(tx.nonce), hexToBytes(raw), JSON.stringify(receipt))
      const putLog = db.prepare('INSERT INTO logs (block_number, log_index, tx_hash, address, topics, data) VALUES (?, ?, ?, ?, ?, ?)')
      for (const l of logs) putLog.run(number, l.logIndex, hash, l.address.toLowerCase(), JSON.stringify(l.topics), l.data)
      db.exec('COMMIT')
    } catch (err) {
      db.exec('ROLLBACK')
      // Memory and disk disagree now; refuse further work rather than diverge.
      this.closed = true
      throw err
    }
    this.headBlock = stored
  }

  /** Executes a call against the latest state and throws away its changes. */
  async call (req: CallRequest): Promise<{ returnValue: Uint8Array, gasUsed: bigint, error?: string }> {
    const sm = this.vm.stateManager
    await sm.checkpoint()
    try {
      const res = await this.vm.evm.runCall({
        caller: createAddressFromString(req.from ?? '0x0000000000000000000000000000000000000000'),
        origin: createAddressFromString(req.from ?? '0x0000000000000000000000000000000000000000'),
        to: req.to === undefined ? undefined : createAddressFromString(req.to),
        data: req.data === undefined ? new Uint8Array(0) : hexToBytes(req.data),
        value: req.value ?? 0n,
        gasLimit: req.gas ?? this.blockGasLimit,
        block: createBlock({ header: this.nextBlockHeader() }, { common: this.common, setHardfork: false })
      })
      return { returnValue: res.execResult.returnValue, gasUsed: res.execResult.executionGasUsed, error: res.execResult.exceptionError?.error }
    } finally {
      await sm.revert()
    }
  }

  /** Runs the call as a transaction (intrinsic gas included) and throws away its changes. */
  async estimateGas (req: CallRequest): Promise<bigint> {
    const sm = this.vm.stateManager
    const from = createAddressFromString(req.from ?? '0x0000000000000000000000000000000000000000')
    const nonce = (await sm.getAccount(from))?.nonce ?? 0n
    const tx = createTx({
      type: 2,
      nonce,
      to: req.to,
      data: req.data ?? '0x',
      value: req.value ?? 0n,
      gasLimit: this.blockGasLimit,
      maxFeePerGas: this.baseFeePerGas,
      maxPriorityFeePerGas: 0n,
      chainId: BigInt(this.chainId)
    }, { common: this.common, freeze: false })
    ;(tx as { getSenderAddress: () => Address }).getSenderAddress = () => from
    await sm.checkpoint()
    try {
      const res = await runTx(this.vm, { tx, block: createBlock({ header: this.nextBlockHeader() }, { common: this.common, setHardfork: false }), skipBalance: true, skipNonce: true, skipBlockGasLimitValidation: true })
      const err = res.execResult.exceptionError
      if (err !== undefined) {
        if (err.error === 'revert') throw new RpcError(3, revertMessage(res.execResult.returnValue), bytesToHex(res.execResult.returnValue) as Hex)
        throw new RpcError(-32000, `gas required exceeds allowance or execution failed: ${err.error}`)
      }
      // Gas before refunds, plus room for the 63/64 rule on inner calls.
      const before = res.totalGasSpent + (res.gasRefund ?? 0n)
      return minBig(this.blockGasLimit, before + before / 5n + 5_000n)
    } finally {
      await sm.revert()
    }
  }

  getReceipt (hash: string): StoredReceipt | undefined {
    const row = this.db.prepare('SELECT receipt FROM txs WHERE hash = ?').get(hash.toLowerCase()) as { receipt: string } | undefined
    return row === undefined ? undefined : JSON.parse(row.receipt) as StoredReceipt
  }

  getTransaction (hash: string): { raw: Uint8Array, blockNumber: number } | undefined {
    const row = this.db.prepare('SELECT raw, block_number FROM txs WHERE hash = ?').get(hash.toLowerCase()) as { raw: Uint8Array, block_number: number } | undefined
    return row === undefined ? undefined : { raw: new Uint8Array(row.raw), blockNumber: row.block_number }
  }

  getBlock (number: number): StoredBlock | undefined {
    const row = this.db.prepare('SELECT json FROM blocks WHERE number = ?').get(number) as { json: string } | undefined
    return row === undefined ? undefined : JSON.parse(row.json) as StoredBlock
  }

  getBlockByHash (hash: string): StoredBlock | undefined {
    const row = this.db.prepare('SELECT json FROM blocks WHERE hash = ?').get(hash.toLowerCase()) as { json: string } | undefined
    return row === undefined ? undefined : JSON.parse(row.json) as StoredBlock
  }

  getLogs (from: number, to: number, addresses: string[] | undefined): Array<StoredLog & { blockNumber: number, transactionHash: Hex }> {
    const rows = this.db.prepare('SELECT block_number, log_index, tx_hash, address, topics, data FROM logs WHERE block_number BETWEEN ? AND ? ORDER BY block_number, log_index').all(from, to) as Array<{ block_number: number, log_index: number, tx_hash: Hex, address: Hex, topics: string, data: Hex }>
    const want = addresses?.map(a => a.toLowerCase())
    return rows.filter(r => want === undefined || want.includes(r.address)).map(r => ({ address: r.address, topics: JSON.parse(r.topics) as Hex[], data: r.data, logIndex: r.log_index, blockNumber: r.block_number, transactionHash: r.tx_hash }))
  }

  close (): void {
    if (this.closed && !this.db.isOpen) return
    this.closed = true
    if (this.db.isOpen) this.db.close()
  }
}

export interface CallRequest { from?: Hex, to?: Hex, data?: Hex, value?: bigint, gas?: bigint }

function minBig (a: bigint, b: bigint): bigint { return a < b ? a : b }

/** "execution reverted" plus the reason for Error(string) reverts. */
function revertMessage (ret: Uint8Array): string {
  const hex = bytesToHex(ret)
  if (hex.startsWith('0x08c379a0') && ret.length >= 68) {
    const len = Number(BigInt('0x' + hex.slice(2 + 8 + 64, 2 + 8 + 128)))
    return 'execution reverted: ' + new TextDecoder().decode(ret.subarray(68, 68 + len))
  }
  return 'execution reverted'
}
