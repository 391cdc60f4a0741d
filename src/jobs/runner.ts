// JobRunner: drives one job's JobMachine with real time and a JobTransport. It asks for
// offers, places tasks with the cost model, opens signed leases, sends task copies, feeds
// results and heartbeats back into the machine, and writes every step to the JobStore
// before acting on it (copies are recorded before they are sent; a result, its acceptance
// and its billing are written in one transaction).
import { createHash } from 'node:crypto'
import { open, readFile, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { dbc } from '../wire/gen/wire.js'
import { toHex, bytesEqual } from '../core/identity/index.js'
import { createRng } from '../core/rng.js'
import { verifyReceipt } from '../core/settlement/receipt.js'
import { TOKEN_DECIMALS } from '../core/compute/pricing.js'
import { nodeSuite } from '../crypto/suite.js'
import {
  JobMachine, ReputationBook, placeTasks, taskPricePerHour, placeRandomly, explainTask, summarizePlacement, describeUnplaced, quorumOf, deadlineAt, spotChecksOf,
  taskCount as countTasks, taskInputSpec, encodeValueInput, expectedInputBytes, largestInputBytes, signLease,
  type Manifest, type JobCommand, type JobEvent, type Placement, type Progress, type TaskInputSpec, type CopyRecord,
  type PlacementSummary, type PlacementRequest, type TaskPlacementExplanation, type OfferView, type RestoredTask
} from '../core/scheduler/index.js'
import type { JobTransport, TransportOffer } from './transport.js'
import { markRunningCopiesLost, type JobStore } from './store.js'
import { nodeSigner } from './signing.js'
import type { JobPayer } from './payer.js'
import { voucherToWire } from '../core/settlement/voucher-wire.js'
import { formatCoins } from '../core/settlement/stake.js'
import { boundReceipt } from '../core/settlement/bounds.js'

export interface JobRunnerInit {
  jobId: string
  manifest: Manifest
  /** The submitter: lease holder and job owner (or its session key). */
  holder: { peerId: Uint8Array, secretKey: Uint8Array }
  transport: JobTransport
  /** Module bytes (wasm) or the command/image text; sent inline with each task. */
  code: Uint8Array
  store?: JobStore
  reputation?: ReputationBook
  /** Folder relative input paths resolve against. */
  baseDir?: string
  /** Size of `inputs.files.path` (read from disk when omitted). */
  fileSize?: number
  seed?: number
  /** When the job was submitted (a relative `deadline` counts from here; default: run start). */
  submittedAt?: number
  /** Lease heartbeat timeout (default 2 s). */
  leaseTimeoutMs?: number
  stragglerFactor?: number
  /** How long to keep looking for providers when none is left (default 10 s). */
  giveUpAfterMs?: number
  /** Most offers to lease (default 64). */
  maxLeases?: number
  onProgress?: (p: Progress) => void
  onEvent?: (e: JobEvent) => void
  /** How the job pays (escrow on the shared chain, vouchers per provider); none: unpaid (tests, benches). */
  payment?: RunnerPayment
}

/** The runner's side of payment: terms named in lease requests and leases, the payer, the escrow. */
export interface RunnerPayment {
  terms: dbc.task.v1.IPaymentTerms
  payer: JobPayer
  /**
   * Locks the escrow before the first lease opens; throws to stop the job. `predictedCost`: the
   * placement's (tokens); `reserve`: one task at its timeout on each leased offer (tokens), what
   * providers want covered before they start one more task.
   */
  ensureEscrow?: (predictedCost: number, reserve: number) => Promise<void>
  /** Why no new task may start for lack of escrow (undefined: go on). */
  exhausted?: () => string | undefined
  /** A payment or voucher delivery problem (logged; the job goes on). */
  onError?: (err: Error, provider?: string) => void
  /** The payer's signature letting `holder` lease against this escrow (PaymentTerms.holder_auth; providers require it). */
  leaseAuth?: (holder: Uint8Array) => Promise<Uint8Array>
}

export interface JobSummary {
  jobId: string
  status: 'finished' | 'failed' | 'cancelled'
  tasks: number
  done: number
  failed: number
  copies: number
  retries: number
  speculative: number
  wrongCopies: number
  billedCopies: number
  /** Tasks the default spot checks gave a second copy. */
  checkedTasks: number
  /** Providers caught with a wrong result: their results were withdrawn and re-run. */
  caughtProviders: string[]
  providersUsed: number
  leasesLost: number
  elapsedMs: number
  predictedCost: number
  /** Predicted price of every copy sent (re-runs and extra copies included). */
  predictedSpent: number
  /**
   * What the receipts of finished copies bill (tokens). With a budget.total they are verified
   * first and the budget is held against this plus the copies still out; without one it is
   * the receipts' claim (settlement verifies every receipt before paying).
   */
  meteredSpent: number
  placement?: PlacementSummary
  failures: Array<{ index: number, reason: string }>
  /** What the payer signed for (within offers and caps) and what it refused of the receipts' bills, in DBC. */
  payment?: { paid: string, refused: string, unit: 'DBC' }
}

export interface TaskExplanation {
  index: number
  status: string
  acceptedHash?: string
  waiting?: string
  placement?: TaskPlacementExplanation
  copies: Array<Pick<CopyRecord, 'attempt' | 'provider' | 'reason' | 'outcome' | 'hash' | 'error'> & { ms?: number }>
}

const KEY = 65536
const enc = new TextEncoder()
const hexToBytes = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], b => parseInt(b, 16))

export class JobRunner {
  readonly jobId: string
  private readonly m: Manifest
  private machine!: JobMachine
  private readonly rep: ReputationBook
  private placement?: Placement
  /** For `placement: random` only (a baseline policy); seeded from the CSPRNG. */
  private readonly placementRng = createRng(crypto.getRandomValues(new Uint32Array(1))[0])
  private lastPlacement?: Placement
  /** Predicted price of one copy per provider, and what the copies sent so far are predicted to cost. */
  private readonly pricePerCopy = new Map<string, number>()
  private spent = 0
  private budgetSpent = false
  /**
   * What the budget is held against: verified receipts' amounts for finished copies, the
   * predicted price for copies still out, nothing for copies that came back without a receipt.
   */
  private committed = 0
  private metered = 0
  private readonly predictedOfCopy = new Map<number, number>()
  /** Transport id of a leased provider -> its peer id bytes (what its receipts must name). */
  private readonly providerBytes = new Map<string, Uint8Array>()
  private readonly offers = new Map<string, TransportOffer>()
  private readonly leaseIds = new Map<string, Uint8Array>()
  private readonly inflight = new Map<number, AbortController>()
  private readonly outputs = new Map<number, Uint8Array>()
  private readonly memoryResults = new Map<number, { hash: string, output: Uint8Array }>()
  private pendingRows: Array<{ index: number, attempt: number, outcome: string, hash?: string, error?: string, endedAt: number, receipt?: Uint8Array }> = []
  private readonly providersUsed = new Set<string>()
  private readonly failures: Array<{ index: number, reason: string }> = []
  private leasesLost = 0
  /** Providers caught with a wrong result (the default checks). */
  private readonly caught: string[] = []
  private tickScheduled = false
  private timer?: NodeJS.Timeout
  private deadlineTimer?: NodeJS.Timeout
  private timerAt = Infinity
  private unsubscribe?: () => void
  private finish?: (s: JobSummary) => void
  private fail?: (err: unknown) => void
  private startedAt = 0
  private taskCount = 0
  private fileSize?: number
  /** The job's largest task input: what its lease requests announce (a provider's frame limit). */
  private maxInputBytes = 0
  private lookingForLeases = false
  private signal?: AbortSignal
  private done = false
  private jobIdBytes: Uint8Array = new Uint8Array()
  private readonly signer: (msg: Uint8Array) => Uint8Array
  private readonly codeHash: Uint8Array
  /** Providers that ran a task of ours with the code inline: later tasks send only its hash. */
  private readonly codeKnown = new Set<string>()
  /** When each copy was sent, and when its result came back with its receipt (what the payer bounds). */
  private readonly sentAt = new Map<number, number>()
  private readonly returned = new Map<number, { endedAt: number, receipt?: Uint8Array }>()
  /** The prices of each leased provider's signed offer (what its receipts are bounded by). */
  private readonly offerPrices = new Map<string, { priceGpuHour: number, priceCpuHour: number }>()
  private escrowed = false
  private holderAuth: Uint8Array | undefined
  /** Why the last lease was not opened (a provider's refusal says why): the give-up reason names it. */
  private lastLeaseRefusal: string | undefined

  /** Payment terms and payer, when they are made after the runner (before run()). */
  setPayment (payment: RunnerPayment | undefined): void {
    if (payment !== undefined) this.init.payment = payment
  }

  constructor (private readonly init: JobRunnerInit) {
    this.jobId = init.jobId
    this.m = init.manifest
    this.rep = init.reputation ?? new ReputationBook()
    this.signer = nodeSigner(init.holder.secretKey)
    this.codeHash = new Uint8Array(createHash('sha256').update(init.code).digest())
  }

  private now (): number { return Date.now() }

  /** Runs (or resumes, when the store holds its state) the job to the end. */
  async run (opts: { signal?: AbortSignal } = {}): Promise<JobSummary> {
    this.signal = opts.signal
    this.startedAt = this.now()
    this.jobIdBytes = hexToBytes(this.jobId)
    this.fileSize = this.init.fileSize
    if (this.fileSize === undefined && this.m.inputs.files?.path !== undefined) this.fileSize = (await stat(resolve(this.init.baseDir ?? '.', this.m.inputs.files.path))).size
    this.taskCount = countTasks(this.m, this.fileSize)
    const paths = this.m.inputs.files?.paths
    const sizes = paths === undefined ? undefined : await Promise.all(paths.map(async p => await stat(resolve(this.init.baseDir ?? '.', p)).then(s => s.size, () => undefined)))
    this.maxInputBytes = largestInputBytes(this.m, this.fileSize, sizes?.map(s => s ?? 0))
    let restored: Map<number, RestoredTask> | undefined
    if (this.init.store !== undefined) {
      markRunningCopiesLost(this.init.store, this.jobId, this.now())
      restored = this.init.store.restoreState(this.jobId)
      for (const f of this.init.store.failures(this.jobId)) this.failures.push(f)
    }
    const v = this.m.verification
    this.machine = new JobMachine({
      taskCount: this.taskCount,
      redundancy: v.redundancy,
      quorum: quorumOf(this.m),
      maxCopies: v.maxCopies,
      maxAttempts: this.m.task.maxAttempts,
      taskTimeoutMs: this.m.task.timeoutMs,
      leaseTimeoutMs: this.init.leaseTimeoutMs ?? 2000,
      adaptive: v.adaptive,
      spotCheckRate: v.spotCheckRate,
      // the default checks (verification.mode spot-check); which tasks are checked comes from a
      // CSPRNG-seeded rng unless a test fixes the seed, so a provider can not predict it
      spotChecks: spotChecksOf(this.m),
      stragglerFactor: this.init.stragglerFactor ?? 3
    }, this.rep, createRng(this.init.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]), restored)
    this.unsubscribe = this.init.transport.onHeartbeat(hb => {
      this.machine.handleHeartbeat(this.now(), toHex(hb.leaseId))
    })
    const result = new Promise<JobSummary>((resolve, reject) => { this.finish = resolve; this.fail = reject })
    const onAbort = (): void => { this.cancel() }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const deadline = deadlineAt(this.m, this.init.submittedAt ?? this.startedAt)
    if (deadline !== undefined) {
      this.deadlineTimer = setTimeout(() => { this.machine.handleDeadline(this.now()); this.scheduleTick() }, Math.max(0, deadline - this.now()))
    }
    try {
      if (!this.machine.isFinished) {
        // A failed first round of offers is not fatal: keep looking until giveUpAfterMs.
        try { await this.acquireLeases() } catch { void this.findMoreLeases() }
      }
      this.scheduleTick()
      if (this.init.payment !== undefined) void this.catchUpPayments()
      const summary = await result
      return await this.finalPayments(summary)
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
      const total = this.taskCount
      return { total, done: 0, failed: 0, running: 0, queued: total, copies: 0, retries: 0, speculative: 0, wrong: 0, billed: 0 }
    }
    return this.machine.progress()
  }

  /** Accepted outputs (from the store when there is one). */
  results (): Array<{ index: number, hash: string, output: Uint8Array }> {
    if (this.init.store !== undefined) return this.init.store.results(this.jobId)
    return [...this.memoryResults.entries()].sort((a, b) => a[0] - b[0]).map(([index, r]) => ({ index, ...r }))
  }

  placementSummary (): PlacementSummary | undefined { return this.placement === undefined ? undefined : summarizePlacement(this.placement) }

  /** Why task `index` runs where it runs (placement and every copy), or why it does not. */
  explain (index: number): TaskExplanation {
    const copies = this.machine.copiesOf(index).map(c => ({ attempt: c.attempt, provider: c.provider, reason: c.reason, outcome: c.outcome, hash: c.hash, error: c.error, ms: c.endedAt === undefined ? undefined : c.endedAt - c.startedAt }))
    return {
      index,
      status: this.machine.taskStatus(index),
      acceptedHash: this.machine.acceptedHash(index),
      waiting: this.machine.whyNotRunning(index),
      placement: this.placement === undefined ? undefined : explainTask(this.placement, index),
      copies
    }
  }

  // ---- leases --------------------------------------------------------------------

  private leaseRequest (): dbc.task.v1.ILeaseRequest {
    const r = this.m.resources
    return {
      jobId: hexToBytes(this.jobId),
      requester: this.init.holder.peerId,
      resources: { gpuModel: r.gpu?.model ?? '', gpuCount: r.gpu?.count ?? 0, gpuMemoryMib: r.gpu?.memoryMib ?? 0, cpuCores: r.cores, memoryMib: r.memoryMib },
      slots: Math.min(1024, this.taskCount * this.m.verification.redundancy),
      maxPriceHour: this.m.budget.maxPricePerHour ?? 0,
      executor: this.m.executor,
      expectedTaskMs: this.m.task.expectedMs,
      maxInputBytes: this.maxInputBytes,
      requestExpiresAt: this.now() + 10_000,
      ...(this.init.payment !== undefined ? { payment: this.init.payment.terms } : {})
    }
  }

  /** Asks for offers, places the remaining tasks, and leases the offers placement used. */
  private async acquireLeases (): Promise<number> {
    const exclude = new Set<string>([...this.machine.avoidedProviders, ...this.machine.liveLeases().map(l => l.provider)])
    const got = await this.init.transport.requestOffers(this.leaseRequest(), { signal: this.signal, exclude, location: this.m.location })
    const views: OfferView[] = got.map(o => ({ ...o.view, reputation: o.view.reputation ?? this.rep.score(o.view.provider) }))
    for (const o of got) this.offers.set(o.view.offerId, o)
    const now = this.now()
    const remaining = this.machine.progress()
    const placeCount = Math.max(1, remaining.total - remaining.done - remaining.failed)
    const req: PlacementRequest = {
      now,
      taskCount: placeCount,
      copies: this.m.verification.redundancy,
      expectedTaskMs: this.m.task.expectedMs,
      inputBytes: expectedInputBytes(this.m, this.fileSize),
      gpuCount: this.m.resources.gpu?.count ?? 0,
      cores: this.m.resources.cores,
      maxPricePerHour: this.m.budget.maxPricePerHour,
      budgetTotal: this.m.budget.total,
      deadlineAt: deadlineAt(this.m, this.init.submittedAt ?? this.startedAt),
      maxDistanceKm: this.m.location?.maxDistanceKm,
      avoid: this.machine.avoidedProviders
    }
    const p = this.m.placement === 'random' ? placeRandomly(req, views, this.placementRng) : placeTasks(req, views)
    if (this.placement === undefined || this.placement.unplaced.size === this.placement.request.taskCount) this.placement = p
    this.lastPlacement = p
    for (let i = 0; i < views.length; i++) if (p.rejections[i] === undefined) this.pricePerCopy.set(views[i].provider, p.predictions[i].price)
    // Tasks the cost model rules out for good (budget, price, deadline) fail with the reason.
    if (remaining.done + remaining.failed === 0) {
      for (const [t, reason] of p.unplaced) {
        if (reason === 'over-budget' || reason === 'over-price' || reason === 'deadline' || reason === 'too-far') this.machine.handleTaskRejected(now, t, `not placed: ${describeUnplaced(reason)}`)
      }
    }
    const used = views.map((v, i) => ({ v, i })).filter(x => p.tasksPerOffer[x.i] > 0)
      .sort((a, b) => p.predictions[a.i].runMs - p.predictions[b.i].runMs).slice(0, this.init.maxLeases ?? 64)
    let opened = 0
    // money first: no provider works for this job before its escrow is on chain
    if (used.length > 0 && !this.escrowed && this.init.payment?.ensureEscrow !== undefined) {
      try {
        const hours = this.m.task.timeoutMs / 3_600_000
        const reserve = used.reduce((sum, { v }) => sum + taskPricePerHour(this.m, v.priceGpuHour, v.priceCpuHour) * hours, 0)
        await this.init.payment.ensureEscrow(p.totalPrice, reserve)
        this.escrowed = true
      } catch (err) {
        this.machine.handleGiveUp(this.now(), `no escrow: ${(err as Error).message}`, true)
        this.scheduleTick()
        return 0
      }
    }
    // the payer authorises this node as the lease holder once per job (providers refuse leases without
    // it, and charge the sender): no signature yet (chain key busy or down), no lease this round
    let payment: dbc.task.v1.IPaymentTerms | undefined
    try {
      payment = await this.leaseTerms()
    } catch (err) {
      this.lastLeaseRefusal = `the lease holder could not be authorised for the escrow: ${(err as Error).message}`
      this.init.payment?.onError?.(err as Error)
      this.scheduleTick()
      return 0
    }
    await Promise.all(used.map(async ({ v }, rank) => {
      const raw = this.offers.get(v.offerId)!.offer
      const leaseId = enc.encode(`${this.jobId.slice(0, 16)}:${v.offerId}:${now}`)
      const lease = signLease(this.signer, {
        leaseId, offerId: raw.offerId, jobId: hexToBytes(this.jobId), holder: this.init.holder.peerId, provider: raw.provider,
        expiresAt: now + 24 * 3_600_000, heartbeatMs: 200,
        ...(payment !== undefined ? { payment } : {})
      })
      try {
        await this.init.transport.openLease(v.provider, lease, { signal: this.signal })
      } catch (err) { this.lastLeaseRefusal = (err as Error).message; return } // unreachable or refused (e.g. NO_ESCROW): not leased
      const id = toHex(leaseId)
      this.leaseIds.set(id, leaseId)
      this.providersUsed.add(v.provider)
      this.providerBytes.set(v.provider, raw.provider ?? new Uint8Array(0))
      this.offerPrices.set(v.provider, { priceGpuHour: raw.priceGpuHour ?? 0, priceCpuHour: raw.priceCpuHour ?? 0 })
      this.init.payment?.payer.addPayee(v.provider, { payout: raw.payoutAddress ?? '', prices: { priceGpuHour: raw.priceGpuHour ?? 0, priceCpuHour: raw.priceCpuHour ?? 0 }, providerBytes: raw.provider ?? undefined })
      this.machine.handleLease(this.now(), { leaseId: id, provider: v.provider, slots: v.slots, rank })
      opened++
    }))
    this.scheduleTick()
    return opened
  }

  private async findMoreLeases (): Promise<void> {
    if (this.lookingForLeases) return
    this.lookingForLeases = true
    const until = this.now() + (this.init.giveUpAfterMs ?? 10_000)
    try {
      let lastError: Error | undefined
      while (!this.done && this.now() < until) {
        try {
          if (await this.acquireLeases() > 0) return
        } catch (err) { lastError = err as Error }
        await new Promise(resolve => setTimeout(resolve, 250))
      }
      if (lastError !== undefined && !this.done) { this.machine.handleGiveUp(this.now(), `looking for providers failed: ${lastError.message}`); return }
      const why = this.lastPlacement?.unplaced.values().next().value
      if (!this.done && this.machine.liveLeases().length === 0) this.machine.handleGiveUp(this.now(), why !== undefined ? `not placed: ${describeUnplaced(why)}` : `no provider left to run it (all lost, refused or avoided)${this.lastLeaseRefusal !== undefined ? `; last lease refused: ${this.lastLeaseRefusal}` : ''}`)
      else if (!this.done) this.machine.handleGiveUp(this.now(), 'no leased provider may run it (each holds a copy already or failed it)')
    } catch (err) {
      if (!this.done) this.machine.handleGiveUp(this.now(), `looking for providers failed: ${(err as Error).message}`)
    } finally {
      this.lookingForLeases = false
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
      const now = this.now()
      this.machine.handleTimeout(now)
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
      if (e.type === 'copy-settled' && e.billed && e.revoked !== true) void this.payCopy(e.index, e.attempt, e.provider)
      else if (e.type === 'provider-caught') this.init.payment.payer.forfeit(e.provider, `caught returning wrong results: ${e.reason}`)
    }
    this.init.onEvent?.(e)
  }

  private perform (c: JobCommand): void {
    if (c.type === 'run') {
      const predicted = this.pricePerCopy.get(c.provider) ?? 0
      this.spent += predicted
      this.committed += predicted
      this.predictedOfCopy.set(c.index * KEY + c.attempt, predicted)
      this.sentAt.set(c.index * KEY + c.attempt, this.now())
      void this.send(c)
      this.checkBudget()
      return
    }
    if (c.type === 'cancel') { this.inflight.get(c.index * KEY + c.attempt)?.abort(new Error('copy cancelled')); return }
    if (c.type === 'release-lease') { const id = this.leaseIds.get(c.leaseId); if (id !== undefined) this.init.transport.closeLease?.(c.provider, id); return }
    void this.findMoreLeases()
  }

  /** The payment terms leases carry: the job's, with the payer's holder authorisation (signed once). */
  private async leaseTerms (): Promise<dbc.task.v1.IPaymentTerms | undefined> {
    const p = this.init.payment
    if (p === undefined) return undefined
    if (this.holderAuth === undefined && p.leaseAuth !== undefined) this.holderAuth = await p.leaseAuth(this.init.holder.peerId)
    return this.holderAuth !== undefined ? { ...p.terms, holderAuth: this.holderAuth } : p.terms
  }

  private async inputFor (index: number): Promise<Uint8Array> {
    const spec: TaskInputSpec = taskInputSpec(this.m, index, this.fileSize)
    if (spec.kind === 'value') return encodeValueInput(spec.value, this.m.task.inputEncoding)
    const path = resolve(this.init.baseDir ?? '.', spec.path)
    if (spec.kind === 'file') return new Uint8Array(await readFile(path))
    const fh = await open(path)
    try {
      const buf = new Uint8Array(spec.length)
      await fh.read(buf, 0, spec.length, spec.offset)
      return buf
    } finally { await fh.close() }
  }

  private async send (c: Extract<JobCommand, { type: 'run' }>): Promise<void> {
    const key = c.index * KEY + c.attempt
    const ac = new AbortController()
    this.inflight.set(key, ac)
    let res: dbc.task.v1.ITaskResult
    try {
      const input = this.m.inputs.list !== undefined || this.m.inputs.range !== undefined ? encodeValueInput((taskInputSpec(this.m, c.index) as { value: unknown }).value, this.m.task.inputEncoding) : await this.inputFor(c.index)
      const task: dbc.task.v1.ITask = {
        taskId: enc.encode(`${this.jobId}:${c.index}:${c.attempt}`),
        jobId: this.jobIdBytes,
        leaseId: this.leaseIds.get(c.leaseId),
        index: c.index,
        attempt: c.attempt,
        executor: this.m.executor,
        codeHash: this.codeHash,
        code: this.codeKnown.has(c.provider) ? undefined : this.init.code,
        entry: this.m.entry,
        input,
        deadlineMs: this.m.task.timeoutMs,
        memoryLimitMib: this.m.resources.memoryMib
      }
      res = await this.init.transport.runTask(c.provider, task, { signal: ac.signal })
    } catch (err) {
      if (ac.signal.aborted || this.done) return
      res = { ok: false, error: (err as Error).message }
    } finally {
      this.inflight.delete(key)
    }
    if (this.done) return
    this.onResult(c, res)
  }

  /** Re-runs and tie-breaks cost too: once budget.total is used up, nothing new starts. */
  private checkBudget (): void {
    const spent = this.budgetSpent ? undefined : this.init.payment?.exhausted?.()
    if (spent !== undefined) {
      this.budgetSpent = true
      this.machine.handleGiveUp(this.now(), spent, true)
      this.scheduleTick()
      return
    }
    const total = this.m.budget.total
    if (total !== undefined && this.committed >= total && !this.budgetSpent) {
      this.budgetSpent = true
      this.machine.handleGiveUp(this.now(), `budget.total (${total}) is spent (${this.committed.toFixed(6)} billed or still running), re-runs included`, true)
      this.scheduleTick()
    }
  }

  /** Replaces a finished copy's predicted price by what its verified receipt bills (0 without one). */
  private meter (key: number, provider: string, receipt: dbc.receipt.v1.ISignedReceipt | null | undefined, taskId: Uint8Array): void {
    const predicted = this.predictedOfCopy.get(key) ?? 0
    this.predictedOfCopy.delete(key)
    let billed = 0
    if (receipt?.receipt != null && receipt.signature != null) {
      if (this.m.budget.total !== undefined) {
        // the budget rests on it: check the signature, amount and id (~100 us; settlement checks again)
        const v = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: receipt.receipt, signature: receipt.signature }), this.providerBytes.get(provider), TOKEN_DECIMALS, nodeSuite.verify)
        // a receipt that does not check, names another provider, job or task counts at the predicted price
        billed = v.ok && bytesEqual(v.receipt.jobId, this.jobIdBytes) && bytesEqual(v.receipt.taskId, taskId) ? Number(this.payableOf(key, provider, v.receipt)) / 10 ** TOKEN_DECIMALS : predicted
      } else {
        // informational only (no budget to hold): the claimed amount, unchecked (settlement checks it)
        try { billed = Number(dbc.receipt.v1.UsageReceipt.decode(receipt.receipt).amount) / 10 ** TOKEN_DECIMALS } catch { billed = 0 }
        if (!Number.isFinite(billed)) billed = 0
      }
      this.metered += billed
    }
    this.committed += billed - predicted
    this.checkBudget()
  }

  /**
   * What a paid job will pay for this receipt at most (its offer's price for the time measured:
   * core/settlement/bounds.ts), so an overcharging receipt does not eat the budget; an unpaid
   * job (no payment terms) counts the receipt's amount.
   */
  private payableOf (key: number, provider: string, r: dbc.receipt.v1.UsageReceipt): bigint {
    const amount = BigInt(r.amount)
    const offer = this.offerPrices.get(provider)
    const sent = this.sentAt.get(key)
    if (this.init.payment === undefined || offer === undefined || sent === undefined) return amount
    return boundReceipt({
      receiptAmount: amount, usage: { gpuSeconds: r.gpuSeconds, cpuMs: r.cpuMs }, offer, gpus: this.m.resources.gpu?.count ?? 0, cores: this.m.resources.cores,
      measuredMs: this.now() - sent, timeoutMs: this.m.task.timeoutMs, maxPricePerHour: this.m.budget.maxPricePerHour
    }).payable
  }

  private onResult (c: Extract<JobCommand, { type: 'run' }>, res: dbc.task.v1.ITaskResult): void {
    const now = this.now()
    const key = c.index * KEY + c.attempt
    this.meter(key, c.provider, res.receipt, enc.encode(`${this.jobId}:${c.index}:${c.attempt}`))
    let ok = res.ok === true
    let error = res.error ?? undefined
    let hash: string | undefined
    if (ok) {
      const output = res.output ?? new Uint8Array()
      hash = createHash('sha256').update(output).digest('hex')
      // The hash the provider signed must be the hash of what it sent.
      if (res.outputHash != null && res.outputHash.length > 0 && toHex(res.outputHash) !== hash) { ok = false; error = 'output does not match its hash' } else this.outputs.set(key, output)
    }
    if (ok) this.codeKnown.add(c.provider)
    else if (/CODE_MISSING/.test(error ?? '')) this.codeKnown.delete(c.provider)
    const receipt = res.receipt == null ? undefined : dbc.receipt.v1.SignedReceipt.encode(res.receipt).finish()
    if (this.init.payment !== undefined) this.returned.set(key, { endedAt: now, receipt })
    const verdict = this.machine.handleResult(now, { index: c.index, attempt: c.attempt, ok, hash, error })
    if (verdict === 'unknown') return
    this.pendingRows.push({ index: c.index, attempt: c.attempt, outcome: verdict, hash, error, endedAt: now, receipt })
    if (verdict !== 'pending' && verdict !== 'agreed') this.outputs.delete(key)
    this.scheduleTick()
  }

  // ---- payment -------------------------------------------------------------------

  /** Pays one billed copy: bounded by the payer, then the provider's new voucher goes to it. */
  private async payCopy (index: number, attempt: number, provider: string): Promise<void> {
    const pay = this.init.payment
    if (pay === undefined) return
    const key = index * KEY + attempt
    let got = this.returned.get(key)
    let sent = this.sentAt.get(key)
    this.returned.delete(key); this.sentAt.delete(key)
    if (got === undefined || sent === undefined) {
      const row = this.init.store?.copies(this.jobId, index).find(c => c.attempt === attempt)
      if (row === undefined) return
      got = { endedAt: row.endedAt ?? row.startedAt, receipt: row.receipt }
      sent = row.startedAt
    }
    try {
      const out = await pay.payer.pay({ provider, key: `${index}:${attempt}`, receipt: got.receipt, taskId: enc.encode(`${this.jobId}:${index}:${attempt}`), measuredMs: got.endedAt - sent })
      if (out.voucher !== undefined && out.recorded) await this.sendVoucher(provider, out.voucher)
    } catch (err) {
      pay.onError?.(err as Error, provider)
    }
  }

  private async sendVoucher (provider: string, v: import('../core/settlement/voucher.js').SignedVoucher): Promise<void> {
    const send = this.init.transport.sendVoucher?.bind(this.init.transport)
    if (send === undefined) return
    try {
      await send(provider, voucherToWire(v), { signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      // the next voucher (cumulative) or the final one carries this total too
      this.init.payment?.onError?.(err as Error, provider)
    }
  }

  /** After a restart: billed copies whose payment was not recorded before the stop. */
  private async catchUpPayments (): Promise<void> {
    const store = this.init.store
    if (store === undefined) return
    for (const r of store.billedReceipts(this.jobId)) await this.payCopy(r.index, r.attempt, r.provider)
  }

  /** The job ended: payments in flight finish, every provider gets its final voucher. */
  private async finalPayments (summary: JobSummary): Promise<JobSummary> {
    const pay = this.init.payment
    if (pay === undefined) return summary
    await pay.payer.idle()
    const finals = await pay.payer.flush()
    await Promise.all(finals.flatMap(f => f.providers.map(async p => { await this.sendVoucher(p, f.voucher) })))
    const view = pay.payer.view()
    return { ...summary, payment: { paid: formatCoins(BigInt(view.committed)), refused: formatCoins(BigInt(view.refused)), unit: 'DBC' } }
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
    const status = this.machine.isCancelled ? 'cancelled' : p.failed > 0 ? 'failed' : 'finished'
    const summary: JobSummary = {
      jobId: this.jobId, status, tasks: p.total, done: p.done, failed: p.failed, copies: p.copies, retries: p.retries,
      speculative: p.speculative, wrongCopies: p.wrong, checkedTasks: p.checks ?? 0, caughtProviders: [...this.caught], predictedSpent: this.spent, meteredSpent: this.metered, billedCopies: this.init.store?.accounting(this.jobId).billed ?? p.billed, providersUsed: this.providersUsed.size,
      leasesLost: this.leasesLost, elapsedMs: this.now() - this.startedAt, predictedCost: this.placement?.totalPrice ?? 0,
      placement: this.placementSummary(), failures: this.failures.slice(0, 100)
    }
    this.init.store?.saveReputation(this.rep.toJSON())
    this.init.onProgress?.(p)
    this.finish?.(summary)
  }

  private stop (): void {
    this.done = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer)
    this.unsubscribe?.()
  }
}
