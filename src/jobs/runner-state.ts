// What a JobRunner holds and shows: its session's parts, the outputs and results kept until they
// are stored, the tallies its summary reports, and the read-only views the job status, results
// and explain routes ask for (safe to call before run() has built the machine). The pump that
// moves the job is runner.ts.
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import {
  JobMachine, JobSession, ReputationBook, LeaseSearch, BudgetLedger, explainTask, summarizePlacement, leaseSearchPolicyOf, taskCount as countTasks, largestInputBytes,
  type Manifest, type JobEvent, type Progress, type PlacementSummary, type RestoredTask
} from '../core/scheduler/index.js'
import { markRunningCopiesLost } from './store.js'
import { dbc } from '../wire/gen/wire.js'
import { TOKEN_DECIMALS } from '../core/compute/pricing.js'
import { summaryOf } from './runner-store.js'
import { bundlesSummary, type BundleTally } from './runner-send.js'
import { nodeSigner } from './signing.js'
import { RunnerPayments } from './runner-payments.js'
import { LeaseRounds } from './runner-leases.js'
import type { JobRunnerInit, JobSummary, RunnerPayment, TaskExplanation } from './runner-types.js'

export const KEY = 65536
/** Least time between two onProgress calls: each counts the job's tasks (O(tasks) per step was quadratic in a job). */
export const PROGRESS_MS = 50

export abstract class RunnerState {
  readonly jobId: string
  protected readonly m: Manifest
  protected session!: JobSession
  protected readonly rep: ReputationBook
  protected readonly search: LeaseSearch
  protected readonly budget: BudgetLedger
  protected readonly payments: RunnerPayments
  protected readonly leases: LeaseRounds
  /** Outputs of copies whose vote is open, by copy key; accepted ones go to the store (or memoryResults). */
  protected readonly outputs = new Map<number, Uint8Array>()
  private readonly memoryResults = new Map<number, { hash: string, output: Uint8Array }>()
  protected readonly failures: Array<{ index: number, reason: string }> = []
  protected leasesLost = 0
  /** Copies that left in TaskBundle frames (runner-send.ts), for the summary. */
  protected readonly bundles: BundleTally = { copies: 0, frames: 0 }
  /** Providers caught with a wrong result (the default checks). */
  protected readonly caught: string[] = []
  protected done = false
  private progressAt = -Infinity
  private progressTimer?: NodeJS.Timeout

  constructor (protected readonly init: JobRunnerInit) {
    this.jobId = init.jobId
    this.m = init.manifest
    this.rep = init.reputation ?? new ReputationBook()
    this.search = new LeaseSearch(leaseSearchPolicyOf(this.m, init))
    this.budget = new BudgetLedger(this.m.budget.total)
    this.payments = new RunnerPayments(init, this.m, this.jobId, () => this.now())
    this.leases = new LeaseRounds({ init, m: this.m, jobId: this.jobId, rep: this.rep, payments: this.payments, signer: nodeSigner(init.holder.secretKey), now: () => this.now(), machine: () => this.machine, spentBefore: () => this.budget.resumed })
  }

  protected startedAt = 0

  /**
   * Before the pump starts: the job's inputs measured (task count, largest input) and, with a
   * store, what it holds of the job (copies left running by a stop are lost, failures so far).
   */
  protected async prepare (): Promise<Map<number, RestoredTask> | undefined> {
    const l = this.leases
    this.startedAt = l.startedAt = this.now()
    l.fileSize = this.init.fileSize
    if (l.fileSize === undefined && this.m.inputs.files?.path !== undefined) l.fileSize = (await stat(resolve(this.init.baseDir ?? '.', this.m.inputs.files.path))).size
    l.taskCount = countTasks(this.m, l.fileSize)
    const paths = this.m.inputs.files?.paths
    const sizes = paths === undefined ? undefined : await Promise.all(paths.map(async p => await stat(resolve(this.init.baseDir ?? '.', p)).then(s => s.size, () => undefined)))
    l.maxInputBytes = largestInputBytes(this.m, l.fileSize, sizes?.map(s => s ?? 0))
    if (this.init.store === undefined) return undefined
    markRunningCopiesLost(this.init.store, this.jobId, this.now())
    for (const f of this.init.store.failures(this.jobId)) this.failures.push(f)
    const restored = this.init.store.restoreState(this.jobId)
    // what the job billed before a restart still holds against budget.total (the ledger started from 0:
    // after a kill -9, providers ran ~17 tasks past the budget unpaid; helper user, session 14)
    if (restored.size > 0 && this.m.budget.total !== undefined) this.budget.resumeWith(this.billedBefore())
    return restored
  }

  /**
   * What the job's billed copies cost before now, in tokens: what its payer committed when it pays
   * (bounded by the offers and the budget), else what their receipts bill.
   */
  private billedBefore (): number {
    const payer = this.init.payment?.payer
    if (payer !== undefined) return Number(payer.committedUnits) / 10 ** TOKEN_DECIMALS
    let units = 0n
    for (const r of this.init.store?.billedReceipts(this.jobId) ?? []) {
      try { units += BigInt(dbc.receipt.v1.UsageReceipt.decode(dbc.receipt.v1.SignedReceipt.decode(r.receipt).receipt).amount) } catch {}
    }
    return Number(units) / 10 ** TOKEN_DECIMALS
  }

  /** The job's summary at its end. */
  protected summary (p: Progress): JobSummary {
    return summaryOf(p, {
      jobId: this.jobId, cancelled: this.machine.isCancelled, caughtProviders: [...this.caught], predictedSpent: this.budget.spent, meteredSpent: this.budget.metered,
      billedCopies: this.init.store?.accounting(this.jobId).billed, providersUsed: this.leases.providersUsed.size, leasesLost: this.leasesLost, elapsedMs: this.now() - this.startedAt,
      predictedCost: this.leases.placement?.totalPrice ?? 0, placement: this.placementSummary(), failures: this.failures.slice(0, 100), refusals: this.search.refusals(),
      bundles: bundlesSummary(this.bundles)
    })
  }

  protected now (): number { return Date.now() }
  protected get machine (): JobMachine { return this.session.machine }

  /** Payment terms and payer, when they are made after the runner (before run()). */
  setPayment (payment: RunnerPayment | undefined): void {
    if (payment !== undefined) this.init.payment = payment
  }

  progress (): Progress {
    // status can be asked for while run() is still reading the input (before the machine exists)
    if ((this.session as JobSession | undefined) === undefined) {
      const total = this.leases.taskCount
      return { total, done: 0, failed: 0, running: 0, queued: total, copies: 0, retries: 0, speculative: 0, wrong: 0, billed: 0 }
    }
    return this.machine.progress()
  }

  /** Why queued tasks do not run now, while the job waits for busy providers (job status). */
  waiting (): string | undefined { return this.done ? undefined : this.search.waiting(this.now()) }

  /** Refusals providers sent so far, by code (job status). */
  refusals (): Record<string, number> { return this.search.refusals() }

  /** Accepted outputs (from the store when there is one). */
  results (): Array<{ index: number, hash: string, output: Uint8Array }> {
    if (this.init.store !== undefined) return this.init.store.results(this.jobId)
    return [...this.memoryResults.entries()].sort((a, b) => a[0] - b[0]).map(([index, r]) => ({ index, ...r }))
  }

  placementSummary (): PlacementSummary | undefined {
    if (this.leases.placement === undefined) return undefined
    const candidates = this.leases.silence.summary()
    return { ...summarizePlacement(this.leases.placement), ...(candidates !== undefined ? { candidates } : {}) }
  }

  /** Why task `index` runs where it runs (placement and every copy), or why it does not. */
  explain (index: number): TaskExplanation {
    const copies = this.machine.copiesOf(index).map(c => ({ attempt: c.attempt, provider: c.provider, reason: c.reason, outcome: c.outcome, hash: c.hash, error: c.error, ms: c.endedAt === undefined ? undefined : c.endedAt - c.startedAt }))
    const why = this.machine.whyNotRunning(index)
    return {
      index,
      status: this.machine.taskStatus(index),
      acceptedHash: this.machine.acceptedHash(index),
      waiting: why === undefined ? undefined : this.waiting() ?? why,
      placement: this.leases.placement === undefined ? undefined : explainTask(this.leases.placement, index),
      copies
    }
  }

  /** Reports progress now, or once PROGRESS_MS after the last report (the latest state then). */
  protected reportProgress (): void {
    if (this.init.onProgress === undefined || this.progressTimer !== undefined) return
    // stamped once the report is computed (it counts the job's tasks): the spacing is the reports' as delivered
    const report = (): void => { const p = this.machine.progress(); this.progressAt = performance.now(); this.init.onProgress?.(p) }
    const wait = this.progressAt + PROGRESS_MS - performance.now()
    if (wait <= 0) { report(); return }
    // a timer may fire up to a loop turn early by performance.now() (libuv's cached loop time): the
    // spacing is checked again when it fires (a unit test saw two reports 48.9 ms apart under load)
    this.progressTimer = setTimeout(() => { this.progressTimer = undefined; if (!this.done) this.reportProgress() }, wait)
  }

  protected stopProgress (): void {
    if (this.progressTimer !== undefined) clearTimeout(this.progressTimer)
    this.progressTimer = undefined
  }

  /** Keeps what an event changes here (outputs, results, tallies) and pays billed copies. */
  protected onEvent (e: JobEvent): void {
    if (e.type === 'accepted') {
      if (this.init.store === undefined) this.memoryResults.set(e.index, { hash: e.hash, output: this.outputs.get(e.index * KEY + e.attempt) ?? new Uint8Array() })
      for (const c of this.machine.copiesOf(e.index)) this.outputs.delete(e.index * KEY + c.attempt)
    } else if (e.type === 'copy-settled') {
      if (e.outcome !== 'agreed') this.outputs.delete(e.index * KEY + e.attempt)
    } else if (e.type === 'task-reopened') {
      this.memoryResults.delete(e.index)
    } else if (e.type === 'provider-caught') {
      this.caught.push(e.provider)
    } else if (e.type === 'task-failed') {
      this.failures.push({ index: e.index, reason: e.reason })
    } else if (e.type === 'lease-lost') {
      this.leasesLost++
    }
    if (this.init.payment !== undefined) {
      if (e.type === 'copy-settled' && e.billed && e.revoked !== true) void this.payments.payCopy(e.index, e.attempt, e.provider, e.index * KEY + e.attempt)
      else if (e.type === 'copy-settled') this.payments.forget(e.index * KEY + e.attempt)
      else if (e.type === 'provider-caught') this.init.payment.payer.forfeit(e.provider, `caught returning wrong results: ${e.reason}`)
    }
    this.init.onEvent?.(e)
  }
}
