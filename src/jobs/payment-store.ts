// The submitter's payment records in the node's store: per job its escrow on the shared chain,
// the providers it leased (payout address, offer prices), every billed receipt with what was
// paid and refused, and per payout address the running total (intended) and the last voucher
// signed for it. Totals only grow; a row is written before its voucher is signed, so a payer
// that restarts signs what it meant to sign and never less.
import type { StatementSync } from 'node:sqlite'
import type { Store } from '../store/db.js'

const MIGRATIONS = [
  `CREATE TABLE job_escrow (
     job_id TEXT PRIMARY KEY, chain_job_id TEXT NOT NULL, chain_id INTEGER NOT NULL, contract TEXT NOT NULL,
     payer TEXT NOT NULL, budget TEXT, deposited TEXT NOT NULL DEFAULT '0', allow_top_up INTEGER NOT NULL DEFAULT 0,
     closed_at REAL, refund_tx TEXT, refunded TEXT, kind TEXT NOT NULL DEFAULT 'grid')`,
  `CREATE TABLE job_payees (
     job_id TEXT NOT NULL, provider TEXT NOT NULL, provider_bytes BLOB, payout TEXT NOT NULL,
     price_gpu_hour REAL NOT NULL, price_cpu_hour REAL NOT NULL, PRIMARY KEY (job_id, provider))`,
  `CREATE TABLE job_payments (
     job_id TEXT NOT NULL, receipt_key TEXT NOT NULL, seq INTEGER NOT NULL, provider TEXT NOT NULL, payout TEXT NOT NULL,
     billed TEXT NOT NULL, payable TEXT NOT NULL, refused TEXT NOT NULL, limit_by TEXT NOT NULL, reason TEXT,
     leaf BLOB, at REAL NOT NULL, PRIMARY KEY (job_id, receipt_key))`,
  `CREATE TABLE job_vouchers (
     job_id TEXT NOT NULL, payout TEXT NOT NULL, cumulative TEXT NOT NULL DEFAULT '0', receipt_count INTEGER NOT NULL DEFAULT 0,
     root TEXT, signed_cumulative TEXT NOT NULL DEFAULT '0', signed_count INTEGER NOT NULL DEFAULT 0, signed_root TEXT,
     signature TEXT, forfeited TEXT, PRIMARY KEY (job_id, payout))`,
  // forfeits are per provider peer: a payout address is only a claim, another peer may name it
  'ALTER TABLE job_payees ADD COLUMN forfeited TEXT',
  // the providers' reserve deposited on top of budget.total (never paid out; refunded at the end)
  "ALTER TABLE job_escrow ADD COLUMN reserve TEXT NOT NULL DEFAULT '0'",
  // the time the submitter measured for the receipt's copy: what the time bound was computed from
  'ALTER TABLE job_payments ADD COLUMN measured_ms REAL',
  // the payout key signed a binding to this peer (peers sharing an address share its forfeit only when all are bound)
  'ALTER TABLE job_payees ADD COLUMN bound INTEGER NOT NULL DEFAULT 0',
  // each payment's seq is MAX(seq) + 1: without this index a scan of the job's payments (quadratic in a job)
  'CREATE INDEX job_payments_seq ON job_payments (job_id, seq)'
]

export interface EscrowRow {
  jobId: string
  chainJobId: `0x${string}`
  chainId: number
  contract: `0x${string}`
  payer: `0x${string}`
  /** The manifest's budget.total in smallest units, when it states one. */
  budget?: bigint
  deposited: bigint
  /** Deposited on top of budget.total so providers see their next task covered; the payer never pays it. */
  reserve?: bigint
  allowTopUp: boolean
  closedAt?: number
  refundTx?: string
  refunded?: bigint
  kind: 'grid' | 'training'
}

export interface PayeeRow { provider: string, providerBytes?: Uint8Array, payout: `0x${string}`, priceGpuHour: number, priceCpuHour: number, forfeited?: string, bound?: boolean }

export interface PaymentRow {
  receiptKey: string, seq: number, provider: string, payout: `0x${string}`, billed: bigint, payable: bigint, refused: bigint
  limit: string, reason?: string, leaf?: Uint8Array, at: number
  /** The wall time the submitter measured for the copy (ms). */
  measuredMs?: number
}

export interface VoucherRow {
  payout: `0x${string}`
  cumulative: bigint
  receiptCount: number
  root?: `0x${string}`
  signedCumulative: bigint
  signedCount: number
  signedRoot?: `0x${string}`
  signature?: `0x${string}`
  forfeited?: string
}

/**
 * Per job: the receipt keys its payments hold and its highest seq, read from the store once and kept
 * true by addPayment (the only writer of job_payments), so a copy's "paid already?" and its seq cost
 * no statement. Shared by every PaymentStore over one Store (one connection); a job's entry is
 * dropped when a transaction (or savepoint) that read or wrote it is undone, and re-read after.
 */
interface PaidKeys { keys: Set<string>, seq: number, used: number }
/** The held jobs, least recently used first, and the lookups counted (each use's `used`). */
interface HeldPaid { jobs: Map<string, PaidKeys>, lookups: number }
const paidByStore = new WeakMap<Store, HeldPaid>()
/** Jobs whose paid keys are held (the jobs running now). */
export const PAID_JOBS_MAX = 8
/**
 * A held job gives way to another only once unused for this many lookups: while every held job is
 * in use, one more is answered by the indexed statements instead (no whole-job read per lookup:
 * with nine jobs paying at once each lookup read a whole job again; review18 F5).
 */
export const PAID_IDLE_LOOKUPS = 1024
const noop = (): void => {}
const INSERT_PAYMENT = 'INSERT OR IGNORE INTO job_payments (job_id, receipt_key, seq, provider, payout, billed, payable, refused, limit_by, reason, leaf, at, measured_ms)'

const u8 = (v: unknown): Uint8Array | undefined => v instanceof Uint8Array ? new Uint8Array(v) : undefined
const opt = <T>(v: unknown, f: (x: unknown) => T): T | undefined => v == null ? undefined : f(v)

export class PaymentStore {
  private readonly statements = new Map<string, StatementSync>()
  /**
   * Escrow rows as last read outside a transaction (the runner asks per copy whether the escrow is
   * spent); every write to job_escrow goes through this class and drops the job's entry.
   */
  private readonly escrowRows = new Map<string, EscrowRow>()

  private readonly paid: HeldPaid

  constructor (readonly store: Store) {
    store.migrate('job-payments', MIGRATIONS)
    let paid = paidByStore.get(store)
    if (paid === undefined) { paid = { jobs: new Map(), lookups: 0 }; paidByStore.set(store, paid) }
    this.paid = paid
  }

  /**
   * The job's paid keys and highest seq (paidByStore), read once; undefined while PAID_JOBS_MAX other
   * jobs are held and in use (PAID_IDLE_LOOKUPS): the caller asks the store's indexed statements.
   */
  private paidOf (jobId: string): PaidKeys | undefined {
    const held = this.paid
    const now = ++held.lookups
    let p = held.jobs.get(jobId)
    if (p !== undefined) {
      p.used = now
      held.jobs.delete(jobId)
      held.jobs.set(jobId, p) // least recently used first
      return p
    }
    if (held.jobs.size >= PAID_JOBS_MAX) {
      const [oldest, q] = held.jobs.entries().next().value as [string, PaidKeys]
      if (now - q.used < PAID_IDLE_LOOKUPS) return undefined
      held.jobs.delete(oldest)
    }
    p = { keys: new Set(), seq: 0, used: now }
    for (const r of this.stmt('SELECT receipt_key, seq FROM job_payments WHERE job_id = ?').all(jobId) as Array<{ receipt_key: string, seq: number }>) {
      p.keys.add(String(r.receipt_key))
      if (Number(r.seq) > p.seq) p.seq = Number(r.seq)
    }
    held.jobs.set(jobId, p)
    this.dropIfUndone(jobId)
    return p
  }

  /** Inside a transaction: if it (or the savepoint) is undone, the job's paid keys are read again. */
  private dropIfUndone (jobId: string): void {
    if (this.store.inTransaction()) this.store.afterCommit(noop, () => { this.paid.jobs.delete(jobId) })
  }

  private stmt (sql: string): StatementSync {
    let st = this.statements.get(sql)
    if (st === undefined) { st = this.store.db.prepare(sql); this.statements.set(sql, st) }
    return st
  }

  transaction<T> (fn: () => T): T { return this.store.transaction(fn) }
  /** Store.afterCommit: runs once the enclosing transaction commits (at once outside one), or `onRollback` if it is undone. */
  afterCommit (onCommit: () => void, onRollback?: () => void): void { this.store.afterCommit(onCommit, onRollback) }

  // ---- escrow

  putEscrow (e: EscrowRow): void {
    this.escrowRows.delete(e.jobId)
    this.stmt(`INSERT INTO job_escrow (job_id, chain_job_id, chain_id, contract, payer, budget, deposited, allow_top_up, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(job_id) DO UPDATE SET allow_top_up = MAX(allow_top_up, excluded.allow_top_up)`)
      .run(e.jobId, e.chainJobId, e.chainId, e.contract, e.payer, e.budget?.toString() ?? null, e.deposited.toString(), e.allowTopUp ? 1 : 0, e.kind)
  }

  escrow (jobId: string): EscrowRow | undefined {
    const hit = this.escrowRows.get(jobId)
    if (hit !== undefined) return { ...hit }
    const r = this.stmt('SELECT * FROM job_escrow WHERE job_id = ?').get(jobId) as Record<string, unknown> | undefined
    const row = r === undefined ? undefined : rowToEscrow(r)
    // a row read inside a transaction may yet be rolled back
    if (row !== undefined && !this.store.inTransaction()) {
      if (this.escrowRows.size >= 1024) this.escrowRows.delete(this.escrowRows.keys().next().value as string)
      this.escrowRows.set(jobId, row)
    }
    return row === undefined ? undefined : { ...row }
  }

  escrows (): EscrowRow[] {
    return (this.stmt('SELECT * FROM job_escrow').all() as Array<Record<string, unknown>>).map(rowToEscrow)
  }

  /** Records what is now deposited in total (never lowers it). */
  setDeposited (jobId: string, total: bigint): void {
    const cur = this.escrow(jobId)?.deposited ?? 0n
    this.escrowRows.delete(jobId)
    if (total > cur) this.stmt('UPDATE job_escrow SET deposited = ? WHERE job_id = ?').run(total.toString(), jobId)
  }

  setReserve (jobId: string, reserve: bigint): void {
    this.escrowRows.delete(jobId)
    this.stmt('UPDATE job_escrow SET reserve = ? WHERE job_id = ?').run(reserve.toString(), jobId)
  }

  setClosed (jobId: string, at: number): void {
    this.escrowRows.delete(jobId)
    this.stmt('UPDATE job_escrow SET closed_at = COALESCE(closed_at, ?) WHERE job_id = ?').run(at, jobId)
  }

  setRefunded (jobId: string, tx: string, amount: bigint): void {
    this.escrowRows.delete(jobId)
    this.stmt('UPDATE job_escrow SET refund_tx = ?, refunded = ? WHERE job_id = ?').run(tx, amount.toString(), jobId)
  }

  // ---- payees

  putPayee (jobId: string, p: PayeeRow): void {
    this.stmt(`INSERT INTO job_payees (job_id, provider, provider_bytes, payout, price_gpu_hour, price_cpu_hour, bound) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(job_id, provider) DO UPDATE SET provider_bytes = excluded.provider_bytes, payout = excluded.payout, price_gpu_hour = excluded.price_gpu_hour, price_cpu_hour = excluded.price_cpu_hour, bound = excluded.bound`)
      .run(jobId, p.provider, p.providerBytes ?? null, p.payout.toLowerCase(), p.priceGpuHour, p.priceCpuHour, p.bound === true ? 1 : 0)
  }

  payees (jobId: string): PayeeRow[] {
    return (this.stmt('SELECT * FROM job_payees WHERE job_id = ?').all(jobId) as Array<Record<string, unknown>>).map(r => ({
      provider: String(r.provider), providerBytes: u8(r.provider_bytes), payout: String(r.payout) as `0x${string}`, priceGpuHour: Number(r.price_gpu_hour), priceCpuHour: Number(r.price_cpu_hour), forfeited: opt(r.forfeited, String), bound: Number(r.bound ?? 0) === 1
    }))
  }

  /** A provider peer caught lying: its receipts in this job are refused from now on. */
  forfeitPayee (jobId: string, provider: string, reason: string): void {
    this.stmt('UPDATE job_payees SET forfeited = COALESCE(forfeited, ?) WHERE job_id = ? AND provider = ?').run(reason, jobId, provider)
  }

  // ---- payments and vouchers

  hasPayment (jobId: string, receiptKey: string): boolean {
    const paid = this.paidOf(jobId)
    if (paid === undefined) return this.stmt('SELECT 1 FROM job_payments WHERE job_id = ? AND receipt_key = ?').get(jobId, receiptKey) !== undefined
    return paid.keys.has(receiptKey)
  }

  /** Records one billed receipt (first write wins); returns whether this call recorded it. */
  addPayment (jobId: string, p: Omit<PaymentRow, 'seq'>): boolean {
    const paid = this.paidOf(jobId)
    const rest = [p.provider, p.payout.toLowerCase(), p.billed.toString(), p.payable.toString(), p.refused.toString(), p.limit, p.reason ?? null, p.leaf ?? null, p.at, p.measuredMs !== undefined && Number.isFinite(p.measuredMs) ? p.measuredMs : null]
    // the job's keys not held (others in use): its seq is the job's MAX(seq) + 1 (the index job_payments_seq finds it)
    if (paid === undefined) return Number(this.stmt(`${INSERT_PAYMENT} SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM job_payments WHERE job_id = ?`).run(jobId, p.receiptKey, ...rest, jobId).changes) === 1
    if (paid.keys.has(p.receiptKey)) return false
    // its seq is the job's highest + 1 (held in memory: paidOf)
    const seq = paid.seq + 1
    const r = this.stmt(`${INSERT_PAYMENT} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(jobId, p.receiptKey, seq, ...rest)
    // a row the keys did not know (another connection wrote it): they are read again at the next use
    if (Number(r.changes) !== 1) { this.paid.jobs.delete(jobId); return false }
    paid.keys.add(p.receiptKey)
    paid.seq = seq
    this.dropIfUndone(jobId)
    return true
  }

  payments (jobId: string, payout?: string): PaymentRow[] {
    const rows = (payout === undefined
      ? this.stmt('SELECT * FROM job_payments WHERE job_id = ? ORDER BY seq').all(jobId)
      : this.stmt('SELECT * FROM job_payments WHERE job_id = ? AND payout = ? ORDER BY seq').all(jobId, payout.toLowerCase())) as Array<Record<string, unknown>>
    return rows.map(r => ({
      receiptKey: String(r.receipt_key), seq: Number(r.seq), provider: String(r.provider), payout: String(r.payout) as `0x${string}`,
      billed: BigInt(String(r.billed)), payable: BigInt(String(r.payable)), refused: BigInt(String(r.refused)), limit: String(r.limit_by),
      reason: opt(r.reason, String), leaf: u8(r.leaf), at: Number(r.at), measuredMs: opt(r.measured_ms, Number)
    }))
  }

  /** Sum of payable amounts over the job (what the budget is held against). */
  committed (jobId: string): bigint { return this.totals(jobId).committed }

  /** Sums of the payable and the refused amounts over the job. */
  totals (jobId: string): { committed: bigint, refused: bigint } {
    let committed = 0n; let refused = 0n
    for (const r of this.stmt('SELECT payable, refused FROM job_payments WHERE job_id = ?').all(jobId) as Array<{ payable: string, refused: string }>) {
      committed += BigInt(r.payable); refused += BigInt(r.refused)
    }
    return { committed, refused }
  }

  voucher (jobId: string, payout: string): VoucherRow | undefined {
    const r = this.stmt('SELECT * FROM job_vouchers WHERE job_id = ? AND payout = ?').get(jobId, payout.toLowerCase()) as Record<string, unknown> | undefined
    return r === undefined ? undefined : rowToVoucher(r)
  }

  vouchers (jobId: string): VoucherRow[] {
    return (this.stmt('SELECT * FROM job_vouchers WHERE job_id = ? ORDER BY payout').all(jobId) as Array<Record<string, unknown>>).map(rowToVoucher)
  }

  /** Raises the intended total of a payout (never lowers it). */
  setIntended (jobId: string, payout: string, cumulative: bigint, count: number, root: string | undefined): void {
    const cur = this.voucher(jobId, payout)
    if (cur === undefined) {
      this.stmt('INSERT INTO job_vouchers (job_id, payout, cumulative, receipt_count, root) VALUES (?, ?, ?, ?, ?)').run(jobId, payout.toLowerCase(), cumulative.toString(), count, root ?? null)
    } else if (cumulative > cur.cumulative || (cumulative === cur.cumulative && count > cur.receiptCount)) {
      this.stmt('UPDATE job_vouchers SET cumulative = ?, receipt_count = ?, root = ? WHERE job_id = ? AND payout = ?').run(cumulative.toString(), count, root ?? null, jobId, payout.toLowerCase())
    }
  }

  /** Records a signed voucher unless one with a higher total was recorded already. */
  setSigned (jobId: string, payout: string, cumulative: bigint, count: number, root: string, signature: string): boolean {
    return this.transaction(() => {
      const cur = this.voucher(jobId, payout)
      if (cur === undefined || cur.signedCumulative > cumulative || (cur.signature !== undefined && cur.signedCumulative === cumulative && cur.signedCount >= count)) return false
      this.stmt('UPDATE job_vouchers SET signed_cumulative = ?, signed_count = ?, signed_root = ?, signature = ? WHERE job_id = ? AND payout = ?')
        .run(cumulative.toString(), count, root, signature, jobId, payout.toLowerCase())
      return true
    })
  }

  forfeit (jobId: string, payout: string, reason: string): void {
    this.transaction(() => {
      if (this.voucher(jobId, payout) === undefined) this.stmt('INSERT INTO job_vouchers (job_id, payout) VALUES (?, ?)').run(jobId, payout.toLowerCase())
      this.stmt('UPDATE job_vouchers SET forfeited = COALESCE(forfeited, ?) WHERE job_id = ? AND payout = ?').run(reason, jobId, payout.toLowerCase())
    })
  }
}

function rowToEscrow (r: Record<string, unknown>): EscrowRow {
  return {
    jobId: String(r.job_id), chainJobId: String(r.chain_job_id) as `0x${string}`, chainId: Number(r.chain_id), contract: String(r.contract) as `0x${string}`,
    payer: String(r.payer) as `0x${string}`, budget: opt(r.budget, x => BigInt(String(x))), deposited: BigInt(String(r.deposited)), reserve: BigInt(String(r.reserve ?? '0')), allowTopUp: Number(r.allow_top_up) === 1,
    closedAt: opt(r.closed_at, Number), refundTx: opt(r.refund_tx, String), refunded: opt(r.refunded, x => BigInt(String(x))), kind: r.kind === 'training' ? 'training' : 'grid'
  }
}

function rowToVoucher (r: Record<string, unknown>): VoucherRow {
  return {
    payout: String(r.payout) as `0x${string}`, cumulative: BigInt(String(r.cumulative)), receiptCount: Number(r.receipt_count), root: opt(r.root, x => String(x) as `0x${string}`),
    signedCumulative: BigInt(String(r.signed_cumulative)), signedCount: Number(r.signed_count), signedRoot: opt(r.signed_root, x => String(x) as `0x${string}`),
    signature: opt(r.signature, x => String(x) as `0x${string}`), forfeited: opt(r.forfeited, String)
  }
}
