// `dbc earnings` and `dbc wallet` when no node runs (user16 #2): an operator who stopped its node
// still sees what it earned. The figures are read from the node's store (node.db, opened read-only,
// so a node starting meanwhile is not disturbed) and say so: what the payers signed is there in
// full; what was redeemed is what this node's own redeem transactions confirmed (the chain itself is
// read only by a running node), so `pending` may count something redeemed by another way.
import { DatabaseSync } from 'node:sqlite'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { DbcError } from '../errors.js'
import type { EarningsRow } from '../chain/types.js'

export interface StoredEarnings {
  /** This node's account (the provider the vouchers name), when the store or the key file tells. */
  account?: string
  chainId?: number
  contract?: string
  jobs: EarningsRow[]
  totals: { signed: bigint, redeemed: bigint, pending: bigint }
  /** Redeem transactions sent and not confirmed when the node stopped. */
  inFlight: number
  /** Where the figures come from, for the first line printed. */
  source: string
}

interface VoucherRow { chain_job_id: string, provider: string, payer: string, cumulative: string, receipt_count: number, chain_id: number, contract: string, received_at: number, last_error: string | null }

/** The stored ledger of the node whose data dir is `dataDir`. */
export function storedEarnings (dataDir: string): StoredEarnings {
  const path = join(dataDir, 'node.db')
  if (!existsSync(path)) throw new DbcError('NOT_RUNNING', `no dbc node is running with data dir ${dataDir}, and it holds no node.db: this data dir never ran a node`, { hint: 'start one with `dbc node start` (or give --data-dir of the node you ran)' })
  let db: DatabaseSync
  try {
    db = new DatabaseSync(path, { readOnly: true })
    db.exec('PRAGMA busy_timeout = 5000')
    // the first read opens the WAL index (node.db-shm), which a user who cannot write the data dir cannot
    db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get()
  } catch (err) {
    throw unreadable(path, err)
  }
  try {
    const has = (t: string): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined
    const vouchers = has('chain_vouchers') ? db.prepare('SELECT * FROM chain_vouchers ORDER BY received_at DESC').all() as unknown as VoucherRow[] : []
    // this node's confirmed redeems: the highest cumulative total redeemed per (job, provider)
    const redeemed = new Map<string, bigint>()
    let inFlight = 0
    if (has('chain_redeems')) {
      for (const r of db.prepare('SELECT items, state FROM chain_redeems').all() as Array<{ items: string, state: string }>) {
        if (r.state === 'sent') inFlight++
        if (r.state !== 'confirmed') continue
        let items: unknown
        try { items = JSON.parse(r.items) } catch { continue }
        if (!Array.isArray(items)) continue
        for (const i of items) {
          if (!Array.isArray(i) || typeof i[0] !== 'string' || typeof i[1] !== 'string' || !/^\d+$/.test(String(i[2]))) continue
          const k = `${i[0].toLowerCase()}:${i[1].toLowerCase()}`
          const v = BigInt(i[2])
          if (v > (redeemed.get(k) ?? 0n)) redeemed.set(k, v)
        }
      }
    }
    const named = new Map<string, { jobId?: string, tasks: number }>()
    if (has('provider_ledger')) {
      for (const r of db.prepare('SELECT * FROM provider_ledger').all() as Array<{ chain_job_id: string, tasks: number, job_id?: string | null }>) {
        named.set(r.chain_job_id.toLowerCase(), { ...(typeof r.job_id === 'string' && r.job_id !== '' ? { jobId: r.job_id } : {}), tasks: Number(r.tasks) })
      }
    }
    const jobs: EarningsRow[] = vouchers.map(v => {
      const signed = BigInt(v.cumulative)
      const done = redeemed.get(`${v.chain_job_id.toLowerCase()}:${v.provider.toLowerCase()}`) ?? 0n
      const pending = signed > done ? signed - done : 0n
      const n = named.get(v.chain_job_id.toLowerCase())
      return {
        chainJobId: v.chain_job_id as EarningsRow['chainJobId'],
        ...(n?.jobId !== undefined ? { jobId: n.jobId } : {}),
        ...(n !== undefined ? { tasks: n.tasks } : {}),
        payer: v.payer as EarningsRow['payer'],
        signed,
        receiptCount: Number(v.receipt_count),
        redeemed: done,
        pending,
        ...(pending > 0n && v.last_error != null ? { note: v.last_error } : {}),
        receivedAt: Number(v.received_at)
      }
    })
    const totals = jobs.reduce((t, r) => ({ signed: t.signed + r.signed, redeemed: t.redeemed + r.redeemed, pending: t.pending + r.pending }), { signed: 0n, redeemed: 0n, pending: 0n })
    const first = vouchers[0]
    return {
      ...(first !== undefined ? { account: first.provider, chainId: Number(first.chain_id), contract: first.contract } : {}),
      jobs,
      totals,
      inFlight,
      source: `the node is not running: figures from its stored ledger (${path}), not the live node; "redeemed" counts this node's own confirmed redeems (start the node for the chain's figures, balance and stake)`
    }
  } finally {
    db.close()
  }
}

/** `dbc wallet` of a stopped node: its address (from the default key file, else its stored vouchers); balance and stake live on the chain. */
export async function storedWallet (dataDir: string): Promise<{ account?: string, source: string }> {
  const keyFile = join(dataDir, 'chain', 'key')
  let account: string | undefined
  if (existsSync(keyFile)) {
    const [{ readKeyFile }, { privateKeyToAccount }] = await Promise.all([import('../chain/keys.js'), import('viem/accounts')])
    account = privateKeyToAccount(readKeyFile(keyFile)).address
  } else if (existsSync(join(dataDir, 'node.db'))) {
    account = storedEarnings(dataDir).account
  }
  if (account === undefined) throw new DbcError('NOT_RUNNING', `no dbc node is running with data dir ${dataDir}, and it holds no chain key: this data dir never ran a node`, { hint: 'start one with `dbc node start` (or give --data-dir of the node you ran)' })
  return { account, source: `the node is not running: its address from ${existsSync(keyFile) ? keyFile : 'its stored vouchers'} (a chain.keyFile set in the config is not read here); balance and stake are read from the chain by a running node (\`dbc node start\`)` }
}

/**
 * The store could not be opened or read: a user without write access to the data dir cannot read
 * a WAL database (SQLite must create its -shm file there; review17 L3), or the file is not a store.
 */
function unreadable (path: string, err: unknown): DbcError {
  const msg = err instanceof Error ? err.message : String(err)
  const hint = /readonly|read-only|permission|access/i.test(msg)
    ? 'run it as the user the node runs as: reading the store needs write access to the data dir (SQLite creates node.db-shm there), or start the node and ask it'
    : 'check that --data-dir names a dbc node\'s data dir'
  return new DbcError('STORE_UNREADABLE', `cannot read the node's store ${path}: ${msg}`, { hint })
}
