// One send queue per key: transactions are prepared, signed and broadcast one at a time, with
// nonces in order (nodes reject or stall out-of-order nonces). Preparing a call simulates it
// first, so a revert comes back as a ChainError naming the contract's custom error, and checks
// the balance, so an unfunded key is reported as such before anything is sent.
import { encodeFunctionData, keccak256, type Abi, type ContractFunctionArgs, type ContractFunctionName, type TransactionReceipt } from 'viem'
import { ChainError } from '../errors.js'
import type { ChainConnection } from './client.js'
import type { Address, Hex } from './config.js'
import { toChainError } from './errors.js'

export interface SignedTx { hash: Hex, raw: Hex, nonce: number, gas: bigint }

export class SendQueue {
  private tail: Promise<unknown> = Promise.resolve()
  private next: number | undefined

  constructor (private readonly conn: ChainConnection) {}

  private queued = 0
  /** Jobs waiting on this queue or running (the node's metrics read it). */
  get depth (): number { return this.queued }

  /** Runs `fn` after every job queued before it on this key. */
  run<T> (fn: () => Promise<T>): Promise<T> {
    this.queued++
    const job = this.tail.then(fn).finally(() => { this.queued-- })
    this.tail = job.catch(() => {})
    return job
  }

  /** The next nonce: the larger of what we used last and what the chain counts as pending. */
  async takeNonce (): Promise<number> {
    const pending = await this.conn.publicClient.getTransactionCount({ address: this.conn.account.address, blockTag: 'pending' })
    const n = Math.max(pending, this.next ?? 0)
    this.next = n + 1
    return n
  }

  /** Forget the local nonce (after a failed send): the next one comes from the chain. */
  resetNonce (): void { this.next = undefined }

  /** Simulates, estimates, checks the balance and signs a contract call (does not send it). */
  async signCall<const A extends Abi, F extends ContractFunctionName<A, 'nonpayable' | 'payable'>> (req: {
    address: Address
    abi: A
    functionName: F
    args: ContractFunctionArgs<A, 'nonpayable' | 'payable', F>
    value?: bigint
    action: string
  }): Promise<SignedTx> {
    const { publicClient, account } = this.conn
    const ctx = { action: req.action, url: this.conn.url }
    // the balance and the simulation are asked together (each a round trip to the chain: a job's
    // escrow deposit waits on them); an empty key fails every call, often as a misleading revert:
    // that is said first, whatever the simulation answered
    const simulated = publicClient.simulateContract({ address: req.address, abi: req.abi as Abi, functionName: req.functionName as string, args: req.args as unknown[], value: req.value, account } as never)
      .then(() => undefined, (err: unknown) => err)
    const balance = await publicClient.getBalance({ address: account.address }).catch(err => { throw toChainError(err, ctx) })
    if (balance === 0n || balance < (req.value ?? 0n)) throw unfunded(req.action, account.address, balance, req.value ?? 0n)
    const reverted = await simulated
    if (reverted !== undefined) throw toChainError(reverted, ctx)
    const data = encodeFunctionData({ abi: req.abi as Abi, functionName: req.functionName as string, args: req.args as unknown[] })
    return await this.signRaw({ to: req.address, data, value: req.value ?? 0n, action: req.action })
  }

  async signRaw (req: { to?: Address, data: Hex, value: bigint, action: string }): Promise<SignedTx> {
    const { publicClient, walletClient, account } = this.conn
    const ctx = { action: req.action, url: this.conn.url }
    try {
      // four independent reads, asked together (one round trip's wait instead of four; the nonce
      // is taken inside this queue's turn, so still in order). All settle before a failure is
      // thrown: a nonce taken after the catch below forgot the local one would leave a gap
      const [gas, fees, balance, nonce] = await settledAll([
        publicClient.estimateGas({ account, to: req.to, data: req.data, value: req.value }),
        publicClient.estimateFeesPerGas(),
        publicClient.getBalance({ address: account.address }),
        this.takeNonce()
      ] as const)
      const cost = gas * fees.maxFeePerGas + req.value
      if (balance < cost) {
        throw unfunded(req.action, account.address, balance, cost)
      }
      const raw = await walletClient.signTransaction({ account, chain: this.conn.chain, to: req.to ?? null, data: req.data, value: req.value, gas, nonce, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas, type: 'eip1559' } as never) as Hex
      return { hash: keccak256(raw), raw, nonce, gas }
    } catch (err) {
      this.resetNonce()
      throw toChainError(err, ctx)
    }
  }

  /** Broadcasts a signed tx. "Already known" and "already mined" count as success. */
  async broadcast (tx: SignedTx, action: string): Promise<void> {
    try {
      await this.conn.publicClient.sendRawTransaction({ serializedTransaction: tx.raw })
    } catch (err) {
      if (/already known|known transaction|already imported/i.test(String((err as Error).message))) return
      this.resetNonce()
      throw toChainError(err, { action, url: this.conn.url })
    }
  }

  /** Signs, sends and waits for the receipt; for one-shot calls (deposit, stake, ...). */
  async sendAndWait (sign: () => Promise<SignedTx>, action: string, opts: { confirmations: number, timeoutMs: number }): Promise<TransactionReceipt> {
    const tx = await this.run(async () => {
      const signed = await sign()
      await this.broadcast(signed, action)
      return signed
    })
    try {
      const receipt = await this.conn.publicClient.waitForTransactionReceipt({ hash: tx.hash, confirmations: opts.confirmations, timeout: opts.timeoutMs })
      if (receipt.status !== 'success') throw new ChainError('CONTRACT_REVERTED', `${action} was mined but reverted (tx ${tx.hash})`)
      return receipt
    } catch (err) {
      throw toChainError(err, { action: `${action} (waiting for tx ${tx.hash})`, url: this.conn.url })
    }
  }
}

/** Promise.all that waits for every promise to settle, then throws the first failure (in order). */
async function settledAll<const T extends readonly unknown[]> (ps: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const out = await Promise.allSettled(ps)
  for (const r of out) if (r.status === 'rejected') throw r.reason
  return out.map(r => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> }
}

function unfunded (action: string, address: Address, balance: bigint, needed: bigint): ChainError {
  return new ChainError('KEY_UNFUNDED', `${action}: account ${address} holds ${balance} wei but needs ${needed === 0n ? 'some for gas' : `up to ${needed}`}`, {
    hint: 'fund the bridge account (see `dbc wallet`); the outbox keeps the batch and retries',
    data: { address, balance: balance.toString(), needed: needed.toString() }
  })
}
