// JobRunner: the pump around one job's sans-IO core (src/core/scheduler): the JobMachine (tasks,
// leases, verification), the LeaseSearch (when to ask for offers, wait for busy providers, give
// up), the BudgetLedger and the CodeCache. The runner only drives: the transport, the clock and
// the JobStore, where every step is written before it is acted on (copies are recorded before
// they are sent; a result, its acceptance and its billing are written in one transaction).
import { createHash } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { dbc } from '../wire/gen/wire.js'
import { toHex, bytesEqual } from '../core/identity/index.js'
import { createRng } from '../core/rng.js'
import { verifyReceipt } from '../core/settlement/receipt.js'
import { TOKEN_DECIMALS } from '../core/compute/pricing.js'
import { nodeSuite } from '../crypto/suite.js'
import {
  JobMachine, ReputationBook, LeaseSearch, BudgetLedger, CodeCache, explainTask, summarizePlacement, deadlineAt, jobPolicyOf, leaseSearchPolicyOf, refusalCode,
  taskCount as countTasks, largestInputBytes,
  type Manifest, type JobCommand, type JobEvent, type Progress, type PlacementSummary, type RestoredTask
} from '../core/scheduler/index.js'
import { markRunningCopiesLost } from './store.js'
import { readTaskInput } from './task-input.js'
import { nodeSigner } from './signing.js'
import { RunnerPayments } from './runner-payments.js'
import { LeaseRounds, hexToBytes, type LeaseRoundResult } from './runner-leases.js'
import type { JobRunnerInit, JobSummary, RunnerPayment, TaskExplanation } from './runner-types.js'

export type { JobRunnerInit, JobSummary, RunnerPayment, TaskExplanation } from './runner-types.js'

const KEY = 65536
const enc = new TextEncoder()
type RunCommand = Extract<JobCommand, { type: 'run' }>

export class JobRunner {
  readonly jobId: string
  private readonly m: Manifest
  private machine!: JobMachine
  private readonly rep: ReputationBook
  private readonly search: LeaseSearch
  private readonly budget: BudgetLedger
  private readonly code = new CodeCache()
  private readonly payments: RunnerPayments
  private readonly leases: LeaseRounds
  private readonly inflight = new Map<number, AbortController>()
  private readonly outputs = new Map<number, Uint8Array>()
  private readonly memoryResults = new Map<number, { hash: string, output: Uint8Array }>()
  private pendingRows: Array<{ index: number, attempt: number, outcome: string, hash?: string, error?: string, endedAt: number, receipt?: Uint8Array }> = []
  private readonly failures: Array<{ index: number, reason: string }> = []
  private leasesLost = 0
  /** Providers caught with a wrong result (the default checks). */
  private readonly caught: string[] = []
  private tickScheduled = false
  private timer?: NodeJS.Timeout
  private deadlineTimer?: NodeJS.Timeout
  private searchTimer?: NodeJS.Timeout
  private timerAt = Infinity
  private unsubscribe?: () => void
  private finish?: (s: JobSummary) => void
  private fail?: (err: unknown) => void
  private startedAt = 0
  private searching = false
  private askedAgain = false
  private done = false
  private jobIdBytes: Uint8Array = new Uint8Array()
  private readonly codeHash: Uint8Array

  constructor (private readonly init: JobRunnerInit) {
    this.jobId = init.jobId
    this.m = init.manifest
    this.rep = init.reputation ?? new ReputationBook()
    this.codeHash = new Uint8Array(createHash('sha256').update(init.code).digest())
    this.search = new LeaseSearch(leaseSearchPolicyOf(this.m, init))
    this.budget = new BudgetLedger(this.m.budget.total)
    this.payments = new RunnerPayments(init, this.m, this.jobId, () => this.now())
    this.leases = new LeaseRounds({ init, m: this.m, jobId: this.jobId, rep: this.rep, payments: this.payments, signer: nodeSigner(init.holder.secretKey), now: () => this.now(), machine: () => this.machine })
  }

  /** Payment terms and payer, when they are made after the runner (before run()). */
  setPayment (payment: RunnerPayment | undefined): void {
    if (payment !== undefined) this.init.payment = payment
  }

  private now (): number { return Date.now() }

  /** Runs (or resumes, when the store holds its state) the job to the end. */
  async run (opts: { signal?: AbortSignal } = {}): Promise<JobSummary> {
    const l = this.leases
    l.signal = opts.signal
    this.startedAt = l.startedAt = this.now()
    this.jobIdBytes = hexToBytes(this.jobId)
    l.fileSize = this.init.fileSize
    if (l.fileSize === undefined && this.m.inputs.files?.path !== undefined) l.fileSize = (await stat(resolve(this.init.baseDir ?? '.', this.m.inputs.files.path))).size
    l.taskCount = countTasks(this.m, l.fileSize)
    const paths = this.m.inputs.files?.paths
    const sizes = paths === undefined ? undefined : await Promise.all(paths.map(async p => await stat(resolve(this.init.baseDir ?? '.', p)).then(s => s.size, () => undefined)))
    l.maxInputBytes = largestInputBytes(this.m, l.fileSize, sizes?.map(s => s ?? 0))
    let restored: Map<number, RestoredTask> | undefined
    if (this.init.store !== undefined) {
      markRunningCopiesLost(this.init.store, this.jobId, this.now())
      restored = this.init.store.restoreState(this.jobId)
      for (const f of this.init.store.failures(this.jobId)) this.failures.push(f)
    }
    // which tasks are spot-checked comes from a CSPRNG-seeded rng unless a test fixes the seed
    this.machine = new JobMachine(jobPolicyOf(this.m, l.taskCount, this.init), this.rep, createRng(this.init.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]), restored)
    this.unsubscribe = this.init.transport.onHeartbeat(hb => { this.machine.handleHeartbeat(this.now(), toHex(hb.leaseId)) })
    const result = new Promise<JobSummary>((resolve, reject) => { this.finish = resolve; this.fail = reject })
    const onAbort = (): void => { this.cancel() }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const deadline = deadlineAt(this.m, this.init.submittedAt ?? this.startedAt)
    if (deadline !== undefined) {
      this.deadlineTimer = setTimeout(() => { this.machine.handleDeadline(this.now()); this.scheduleTick() }, Math.max(0, deadline - this.now()))
    }
    try {
      if (!this.machine.isFinished) void this.searchLeases()
      this.scheduleTick()
      if (this.init.payment !== undefined) void this.payments.catchUp((i, a) => i * KEY + a)
      const summary = await result
      return await this.payments.final(summary)
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
      this.stop()
    }
  }

  /** Cancels the job: running copies are cancelled and leases released. */
  cancel (): void {
    if (this.done) return
    this.machine.handleCancel(this.now())
    this.scheduleTick()
  }

  progress (): Progress {
    // status can be asked for while run() is still reading the input (before the machine exists)
    if ((this.machine as JobMachine | undefined) === undefined) {
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

  placementSummary (): PlacementSummary | undefined { return this.leases.placement === undefined ? undefined : summarizePlacement(this.leases.placement) }

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

  // ---- leases: the core's LeaseSearch decides; this asks, sleeps and reports -------------

  private async searchLeases (): Promise<void> {
    // asked again mid-search (a lease it opened may run none of the queued copies): search once more after
    if (this.searching) { this.askedAgain = true; return }
    this.searching = true
    this.askedAgain = false
    this.search.begin(this.now())
    try {
      while (!this.done) {
        let round: LeaseRoundResult
        try {
          round = await this.leases.round()
        } catch (err) {
          round = { offers: 0, refusals: [], leased: 0, liveLeases: this.machine.liveLeases().length, error: (err as Error).message }
        }
        if (round.stopped === true || this.done) return
        const d = this.search.handleRound(this.now(), round)
        if (d.kind === 'leased') return
        if (d.kind === 'give-up') { this.machine.handleGiveUp(this.now(), d.reason); return }
        await new Promise(resolve => { this.searchTimer = setTimeout(resolve, Math.max(0, d.at - this.now())) })
      }
    } finally {
      this.searching = false
      if (this.askedAgain && !this.done && !this.machine.isFinished && this.machine.liveLeases().every(l => l.running === 0)) void this.searchLeases()
      this.scheduleTick()
    }
  }

  // ---- the pump ------------------------------------------------------------------

  private scheduleTick (): void {
    if (this.tickScheduled || this.done) return
    this.tickScheduled = true
    setImmediate(() => { this.tick() })
  }

  private tick (): void {
    this.tickScheduled = false
    if (this.done) return
    try {
      this.machine.handleTimeout(this.now())
      const cmds = this.machine.pollCommands()
      const events = this.machine.pollEvents()
      this.persist(cmds, events)
      for (const e of events) this.onEvent(e)
      for (const c of cmds) this.perform(c)
      if (events.length > 0) this.init.onProgress?.(this.machine.progress())
      if (this.machine.isFinished || this.machine.isCancelled) { this.complete(); return }
      this.armTimer()
    } catch (err) {
      this.done = true
      this.fail?.(err)
    }
  }

  private armTimer (): void {
    const next = this.machine.nextTimeout()
    if (next === undefined || next >= this.timerAt) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timerAt = next
    this.timer = setTimeout(() => { this.timer = undefined; this.timerAt = Infinity; this.scheduleTick() }, Math.max(0, next - this.now()))
  }

  private persist (cmds: JobCommand[], events: JobEvent[]): void {
    const s = this.init.store
    const rows = this.pendingRows
    this.pendingRows = []
    if (s === undefined) return
    s.transaction(() => {
      for (const c of cmds) if (c.type === 'run') s.copyStarted(this.jobId, { index: c.index, attempt: c.attempt, provider: c.provider, leaseId: c.leaseId, reason: c.reason, startedAt: this.now() })
      for (const r of rows) s.copyResult(this.jobId, r.index, r.attempt, { outcome: r.outcome as 'pending', hash: r.hash, error: r.error, endedAt: r.endedAt, receipt: r.receipt })
      for (const e of events) {
        if (e.type === 'accepted') s.acceptTask(this.jobId, e.index, e.hash, e.attempt, this.outputs.get(e.index * KEY + e.attempt) ?? new Uint8Array())
        else if (e.type === 'copy-settled') { if (e.revoked === true) s.revokeCopy(this.jobId, e.index, e.attempt); else s.copySettled(this.jobId, e.index, e.attempt, e.outcome, e.billed) } else if (e.type === 'task-reopened') s.reopenTask(this.jobId, e.index)
        else if (e.type === 'task-failed') s.failTask(this.jobId, e.index, e.reason)
      }
    })
  }

  private onEvent (e: JobEvent): void {
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
      else if (e.type === 'provider-caught') this.init.payment.payer.forfeit(e.provider, `caught returning wrong results: ${e.reason}`)
    }
    this.init.onEvent?.(e)
  }

  private perform (c: JobCommand): void {
    if (c.type === 'run') {
      const key = c.index * KEY + c.attempt
      this.payments.sent(key, this.now())
      const spent = this.budget.copySent(key, this.leases.pricePerCopy.get(c.provider) ?? 0)
      void this.send(c)
      this.checkBudget(spent)
      return
    }
    if (c.type === 'cancel') { this.inflight.get(c.index * KEY + c.attempt)?.abort(new Error('copy cancelled')); return }
    if (c.type === 'release-lease') { const id = this.leases.leaseIds.get(c.leaseId); if (id !== undefined) this.init.transport.closeLease?.(c.provider, id); return }
    void this.searchLeases()
  }

  private async send (c: RunCommand): Promise<void> {
    const key = c.index * KEY + c.attempt
    const ac = new AbortController()
    this.inflight.set(key, ac)
    let res: dbc.task.v1.ITaskResult
    try {
      const task: dbc.task.v1.ITask = {
        taskId: enc.encode(`${this.jobId}:${c.index}:${c.attempt}`),
        jobId: this.jobIdBytes,
        leaseId: this.leases.leaseIds.get(c.leaseId),
        index: c.index,
        attempt: c.attempt,
        executor: this.m.executor,
        codeHash: this.codeHash,
        entry: this.m.entry,
        input: await readTaskInput(this.m, c.index, this.leases.fileSize, this.init.baseDir),
        deadlineMs: this.m.task.timeoutMs,
        memoryLimitMib: this.m.resources.memoryMib
      }
      const withCode = this.code.sendCode(c.provider)
      res = await this.init.transport.runTask(c.provider, { ...task, code: withCode ? this.init.code : undefined }, { signal: ac.signal })
      // the provider lost the module (restart, eviction): the same copy goes again, with it
      if (this.code.handleResult(c.provider, withCode, res.ok === true, res.ok === true ? undefined : refusalCode(res.error ?? '')) === 'resend') {
        res = await this.init.transport.runTask(c.provider, { ...task, code: this.init.code }, { signal: ac.signal })
        this.code.handleResult(c.provider, true, res.ok === true)
      }
    } catch (err) {
      if (ac.signal.aborted || this.done) return
      res = { ok: false, error: (err as Error).message }
    } finally {
      this.inflight.delete(key)
    }
    if (this.done) return
    this.onResult(c, res)
  }

  /** Re-runs and tie-breaks cost too: once the budget (or the escrow) is used up, nothing new starts. */
  private checkBudget (spent: string | undefined): void {
    const why = spent ?? this.init.payment?.exhausted?.()
    if (why === undefined || this.machine.isStopped) return
    this.machine.handleGiveUp(this.now(), why, true)
    this.scheduleTick()
  }

  /** What a finished copy's receipt bills (verified when the budget rests on it); undefined without one. */
  private billOf (key: number, provider: string, receipt: dbc.receipt.v1.ISignedReceipt | null | undefined, taskId: Uint8Array): number | undefined {
    if (receipt?.receipt == null || receipt.signature == null) return undefined
    if (this.m.budget.total === undefined) {
      // informational only (no budget to hold): the claimed amount, unchecked (settlement checks it)
      try { return Number(dbc.receipt.v1.UsageReceipt.decode(receipt.receipt).amount) / 10 ** TOKEN_DECIMALS } catch { return 0 }
    }
    // the budget rests on it: check the signature, amount and id (~100 us; settlement checks again);
    // a receipt that does not check, names another provider, job or task counts at the predicted price
    const v = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: receipt.receipt, signature: receipt.signature }), this.leases.providerBytes.get(provider), TOKEN_DECIMALS, nodeSuite.verify)
    return v.ok && bytesEqual(v.receipt.jobId, this.jobIdBytes) && bytesEqual(v.receipt.taskId, taskId) ? Number(this.payments.payableOf(key, provider, v.receipt)) / 10 ** TOKEN_DECIMALS : this.budget.predictedOf(key)
  }

  private onResult (c: RunCommand, res: dbc.task.v1.ITaskResult): void {
    const now = this.now()
    const key = c.index * KEY + c.attempt
    this.checkBudget(this.budget.copyReturned(key, this.billOf(key, c.provider, res.receipt, enc.encode(`${this.jobId}:${c.index}:${c.attempt}`))))
    let ok = res.ok === true
    // a provider's text, stored and shown: 1 KiB is plenty for a reason (its stderr has its own caps)
    let error = res.error?.slice(0, 1024) ?? undefined
    let hash: string | undefined
    if (ok) {
      const output = res.output ?? new Uint8Array()
      hash = createHash('sha256').update(output).digest('hex')
      // The hash the provider signed must be the hash of what it sent.
      if (res.outputHash != null && res.outputHash.length > 0 && toHex(res.outputHash) !== hash) { ok = false; error = 'output does not match its hash' } else this.outputs.set(key, output)
    }
    const receipt = res.receipt == null ? undefined : dbc.receipt.v1.SignedReceipt.encode(res.receipt).finish()
    this.payments.returnedCopy(key, now, receipt)
    const verdict = this.machine.handleResult(now, { index: c.index, attempt: c.attempt, ok, hash, error })
    if (verdict === 'unknown') return
    this.pendingRows.push({ index: c.index, attempt: c.attempt, outcome: verdict, hash, error, endedAt: now, receipt })
    if (verdict !== 'pending' && verdict !== 'agreed') this.outputs.delete(key)
    this.scheduleTick()
  }

  private complete (): void {
    if (this.done) return
    // Flush what the last tick produced before reporting.
    const cmds = this.machine.pollCommands(); const events = this.machine.pollEvents()
    this.persist(cmds, events)
    for (const e of events) this.onEvent(e)
    for (const c of cmds) if (c.type !== 'run') this.perform(c)
    this.done = true
    for (const ac of this.inflight.values()) ac.abort(new Error('job ended'))
    const p = this.machine.progress()
    const refusals = this.search.refusals()
    const summary: JobSummary = {
      jobId: this.jobId, status: this.machine.isCancelled ? 'cancelled' : p.failed > 0 ? 'failed' : 'finished', tasks: p.total, done: p.done, failed: p.failed, copies: p.copies, retries: p.retries,
      speculative: p.speculative, wrongCopies: p.wrong, checkedTasks: p.checks ?? 0, caughtProviders: [...this.caught], predictedSpent: this.budget.spent, meteredSpent: this.budget.metered, billedCopies: this.init.store?.accounting(this.jobId).billed ?? p.billed, providersUsed: this.leases.providersUsed.size,
      leasesLost: this.leasesLost, elapsedMs: this.now() - this.startedAt, predictedCost: this.leases.placement?.totalPrice ?? 0,
      placement: this.placementSummary(), failures: this.failures.slice(0, 100), ...(Object.keys(refusals).length > 0 ? { refusals } : {})
    }
    this.init.store?.saveReputation(this.rep.toJSON())
    this.init.onProgress?.(p)
    this.finish?.(summary)
  }

  private stop (): void {
    this.done = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer)
    if (this.searchTimer !== undefined) clearTimeout(this.searchTimer)
    this.unsubscribe?.()
  }
}
