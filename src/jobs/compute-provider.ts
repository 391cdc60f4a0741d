// Adapts a ComputePeer (src/compute) to the runner's provider interface: the peer answers
// lease requests with signed offers and runs tasks; this adds the lease-holder checks and, with a
// payment gate (the daemon always passes one), the money checks: a lease opens only on an escrow
// of this provider's chain, each task only while the escrow covers it and the payer's vouchers
// keep up (src/jobs/payment-gate.ts). Without a gate (in-process tests, benches) work is free.
import { createHash } from 'node:crypto'
import type { dbc } from '../wire/gen/wire.js'
import type { ComputePeer } from '../compute/index.js'
import { toHex } from '../core/identity/index.js'
import { checkTaskUnderLease } from '../core/scheduler/ownership.js'
import { nodeVerifyByPeerId } from './signing.js'
import type { LocalProvider } from './local-transport.js'
import { LeaseBook } from './lease-book.js'
import { DbcError, WireError } from '../errors.js'
import { ExecutorErrorCode } from '../compute/executors/types.js'
import { ModuleOffences } from '../core/compute/module-offences.js'
import { moduleRefusal } from './manifest-file.js'
import { demandOf } from '../core/compute/offer-policy.js'
import { RESULT_TOO_LARGE, TASK_BUNDLE_CUT_BYTES, TASK_BUNDLE_CUT_MS } from '../core/scheduler/ports.js'
import { allAborted } from '../compute/task-run.js'
import { PaymentDeclinedError, LEASE_SLOT_QUEUE, type LeasePayment, type PaymentGate } from './payment-gate.js'
import type { BundleAhead } from './payment-gate-types.js'
import { taskPriceUnits } from '../core/settlement/credit.js'

/**
 * A stopping provider's answer to lease requests and leases while its running tasks finish: BUSY,
 * which submitters (old ones too) treat as "not now" and ask other providers meanwhile.
 */
export const DRAINING_REFUSAL = 'BUSY: this provider is stopping: it finishes the tasks it runs and takes no new lease'

export interface ComputePeerProviderInit {
  /** Checks escrow and vouchers (the daemon's); without one, leases and tasks are not paid for. */
  payment?: PaymentGate
  /** Called once per task that a lease admitted, run or refused (the provider's per-task log line). */
  onTask?: (record: ProviderTaskRecord) => void
  /** When given: a TaskBundle's records are handed here together as it ends (one call), not to onTask. */
  onBundle?: (records: ProviderTaskRecord[]) => void
}

/** One task this provider answered under a lease: what the operator's log records. */
export interface ProviderTaskRecord {
  /** The job id as its submitter shows it (hex). */
  job: string
  task: number
  attempt: number
  /** The lease holder's peer id bytes (the submitter or its session). */
  submitter: Uint8Array
  executor: string
  /** ok; failed (it ran and failed); refused (before running: payment, caps, slots). */
  outcome: 'ok' | 'failed' | 'refused'
  /** The failure or refusal code ("TASK_TIMEOUT"), when not ok. */
  code?: string
  error?: string
  durationMs: number
  resultBytes: number
  /** What the signed receipt bills, in the token's smallest unit (18 decimals); 0 when none was signed. */
  billedUnits: bigint
}

export class ComputePeerProvider implements LocalProvider {
  readonly id: string
  private readonly leases = new Map<string, dbc.task.v1.ILease>()
  private readonly code = new Map<string, Uint8Array>()
  /** The offers it issued (a lease must name one, and its request's announced input bytes) and the leases it closed. */
  readonly book = new LeaseBook()
  /** Per holder, its open leases' input bytes and expiry (the frame limit: looked up per frame prefix). */
  private readonly leaseInputs = new Map<string, Map<string, { bytes: number, expiresAt: number }>>()
  /** Modules refused at validation, by (sender, module): which refusals charge the sender. */
  private readonly badModules = new ModuleOffences()

  /** Each open lease's payment terms and task price basis (with a payment gate). */
  private readonly payments = new Map<string, LeasePayment>()
  /** Each open lease's task slot (from its request): a container's CPU limit and GPUs. */
  private readonly leaseSlots = new Map<string, { gpus: number, cores: number }>()
  /** Each open lease's task slots (its offer's): how many of its tasks the lease stream reads ahead. */
  private readonly leaseSlotCounts = new Map<string, number>()
  /** Each open lease's bundle_max (its offer's, when > 1): the most tasks of one TaskBundle its lease stream takes. */
  private readonly leaseBundles = new Map<string, number>()
  /** Each open lease's result bound (its request's max_result_bytes), when announced. */
  private readonly leaseResultBytes = new Map<string, number>()
  readonly payment: PaymentGate | undefined
  private readonly onTask: ((r: ProviderTaskRecord) => void) | undefined
  private readonly onBundle: ((rs: ProviderTaskRecord[]) => void) | undefined

  constructor (readonly peer: ComputePeer, id?: string, init: ComputePeerProviderInit = {}) {
    this.id = id ?? toHex(peer.peerId).slice(-16)
    this.payment = init.payment
    this.onTask = init.onTask
    this.onBundle = init.onBundle
  }

  /** `sender`: the authenticated peer asking (over libp2p); else the request's own requester. */
  offer (req: dbc.task.v1.ILeaseRequest, sender?: Uint8Array): dbc.task.v1.IOffer {
    // a request that names no escrow on this provider's chain gets a signed refusal saying so
    const refusal = this.peer.draining ? DRAINING_REFUSAL : this.payment?.offerRefusal(req)
    // a paid offer carries the payout key's binding to this peer (submitters refuse unbound ones: PAYOUT_NOT_BOUND)
    const payoutBinding = refusal === undefined && req.payment != null ? this.payment?.payoutBinding(this.peer.peerId) : undefined
    const offer = this.peer.offer(req, { ...(refusal !== undefined ? { refusal } : {}), ...(payoutBinding !== undefined ? { payoutBinding } : {}) })
    const announced = Number(req.maxInputBytes ?? 0)
    const demand = demandOf(req.resources)
    // the job's largest result (0 from an old peer: not announced, TASK_MAX_FRAME): a larger one is not sent
    const results = Number(req.maxResultBytes ?? 0)
    this.book.issued(offer, sender ?? req.requester, Date.now(), Number.isFinite(announced) ? Math.max(0, announced) : 0, { gpus: demand.gpus, cores: demand.cpus }, Number.isFinite(results) && results > 0 ? results : undefined)
    return offer
  }

  async openLease (lease: dbc.task.v1.ILease, sender: Uint8Array): Promise<void> {
    if (this.peer.draining) throw new DbcError('BUSY', DRAINING_REFUSAL.slice('BUSY: '.length))
    const offer = this.book.admit({ lease, sender, self: this.peer.peerId, now: Date.now(), verify: nodeVerifyByPeerId })
    // the lease's own checks first (cheap, charged when forged), then the escrow on chain
    const paid = this.payment === undefined ? undefined : await this.payment.admitLease(lease, offer, this.peer.policy.maxTaskMs)
    const id = toHex(lease.leaseId ?? new Uint8Array())
    const holder = toHex(sender)
    this.closeLease(lease.leaseId ?? new Uint8Array(), false) // a lease id reused by its holder replaces its entry
    this.leases.set(id, lease)
    if (paid !== undefined) this.payments.set(id, paid)
    let mine = this.leaseInputs.get(holder)
    if (mine === undefined) { mine = new Map(); this.leaseInputs.set(holder, mine) }
    mine.set(id, { bytes: offer.inputBytes ?? this.peer.policy.maxInputBytes, expiresAt: Number(lease.expiresAt ?? 0) })
    if (offer.slot !== undefined) this.leaseSlots.set(id, offer.slot)
    this.leaseSlotCounts.set(id, Math.max(1, offer.slots ?? 1))
    if ((offer.bundleMax ?? 0) > 1) this.leaseBundles.set(id, offer.bundleMax ?? 0)
    if (offer.resultBytes !== undefined) this.leaseResultBytes.set(id, offer.resultBytes)
  }

  /** The task slots of an open lease here (its offer's); undefined when it is not open. */
  leaseSlotCount (leaseId: Uint8Array): number | undefined {
    return this.leaseSlotCounts.get(toHex(leaseId))
  }

  /** The bundle_max of an open lease here (its offer's); undefined when none or not open. */
  leaseBundleMax (leaseId: Uint8Array): number | undefined {
    return this.leaseBundles.get(toHex(leaseId))
  }

  closeLease (leaseId: Uint8Array, remember = true): void {
    const id = toHex(leaseId)
    const lease = this.leases.get(id)
    this.leases.delete(id)
    this.payments.delete(id)
    this.leaseSlots.delete(id)
    this.leaseSlotCounts.delete(id)
    this.leaseBundles.delete(id)
    this.leaseResultBytes.delete(id)
    if (lease !== undefined) {
      const holder = toHex(lease.holder ?? new Uint8Array())
      const mine = this.leaseInputs.get(holder)
      mine?.delete(id)
      if (mine?.size === 0) this.leaseInputs.delete(holder)
    }
    if (remember) this.book.closedLease(leaseId)
  }

  /** The largest input `sender`'s live leases here announced; undefined when it holds none. */
  leasedInputBytes (sender: Uint8Array): number | undefined {
    const mine = this.leaseInputs.get(toHex(sender))
    if (mine === undefined) return undefined
    const now = Date.now()
    let most: number | undefined
    for (const l of mine.values()) {
      if (l.expiresAt > 0 && l.expiresAt < now) continue
      most = Math.max(most ?? 0, l.bytes)
    }
    return most
  }

  readonly signReceipts = (receipts: readonly Uint8Array[]): dbc.receipt.v1.ISignedReceipt[] => this.peer.signReceipts(receipts)

  async runTask (task: dbc.task.v1.ITask, sender: Uint8Array, opts: { signal?: AbortSignal, charge?: (err: WireError) => void, unsignedReceipt?: boolean } = {}): Promise<dbc.task.v1.ITaskResult> {
    const base = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt }
    const lease = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
    // a lease never opened here throws (charged); one closed lately is refused quietly
    const admitted = lease === undefined ? this.book.missingLease(task.leaseId ?? new Uint8Array()) : checkTaskUnderLease({ task, lease, sender, now: Date.now(), verify: nodeVerifyByPeerId })
    // LEASE_CLOSED: the holder's side may not know yet (its lease stream died on a relay): a lost copy there, not a failed one
    if (!admitted.ok) return { ...base, ok: false, code: lease === undefined ? 'LEASE_CLOSED' : 'TASK_REFUSED', error: `refused: ${admitted.reason}` }
    // from here the task is under a lease this provider granted: one log record whatever happens
    const startedAt = performance.now()
    const { result, usage } = await this.runLeasedTask(task, lease!, sender, opts)
    this.record(task, lease!, result, usage, performance.now() - startedAt)
    return result
  }

  /**
   * The tasks of one TaskBundle, run one after another in ONE of the lease's slots (the lease
   * stream checked they all name its lease, one executor, code and entry): each is checked under
   * its lease, the code is resolved once, the payment gate's slot is taken once for the bundle,
   * each task is admitted by the credit rule as it starts and finished as it ends, the slot is
   * given back once after the last (on every path). One result per task, in order (a task
   * cancelled before it started gets a refusal its stream drops); one log record per task.
   */
  async runBundle (tasks: readonly dbc.task.v1.ITask[], sender: Uint8Array, opts: { signals?: ReadonlyArray<AbortSignal | undefined>, charge?: (err: WireError) => void, unsignedReceipt?: boolean } = {}): Promise<dbc.task.v1.ITaskResult[]> {
    // the bundle's log records go out together as it ends (the daemon writes one line for its ok tasks)
    const recs = this.onBundle !== undefined ? [] as ProviderTaskRecord[] : undefined
    try {
      return await this.bundleTasks(tasks, sender, opts, recs)
    } finally {
      if (recs !== undefined && recs.length > 0) { try { this.onBundle!(recs) } catch {} }
    }
  }

  private async bundleTasks (tasks: readonly dbc.task.v1.ITask[], sender: Uint8Array, opts: { signals?: ReadonlyArray<AbortSignal | undefined>, charge?: (err: WireError) => void, unsignedReceipt?: boolean }, recs: ProviderTaskRecord[] | undefined): Promise<dbc.task.v1.ITaskResult[]> {
    const results: dbc.task.v1.ITaskResult[] = []
    const base = (t: dbc.task.v1.ITask): dbc.task.v1.ITaskResult => ({ taskId: t.taskId, jobId: t.jobId, attempt: t.attempt })
    const refuse = (i: number, code: string, error: string): void => { results[i] = { ...base(tasks[i]), ok: false, code, error: error.startsWith(`${code}:`) ? error : `${code}: ${error}` } }
    const run: number[] = []
    let lease: dbc.task.v1.ILease | undefined
    let code: { code: Uint8Array, hash: string } | undefined
    for (const [i, task] of tasks.entries()) {
      const l = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
      // a lease never opened here throws (charged); one closed lately is refused quietly
      const admitted = l === undefined ? this.book.missingLease(task.leaseId ?? new Uint8Array()) : checkTaskUnderLease({ task, lease: l, sender, now: Date.now(), verify: nodeVerifyByPeerId })
      if (!admitted.ok) { refuse(i, l === undefined ? 'LEASE_CLOSED' : 'TASK_REFUSED', `refused: ${admitted.reason}`); continue }
      // the module once for the bundle (its first task may carry it): the others name the same hash
      const same = code !== undefined && (task.code ?? new Uint8Array()).length === 0 && toHex(task.codeHash ?? new Uint8Array()) === code.hash
      const c = same ? code! : this.resolveCode(task)
      if ('result' in c) { results[i] = c.result; this.record(task, l!, c.result, undefined, 0, recs); continue }
      code = c
      lease = l
      run.push(i)
    }
    if (run.length === 0 || lease === undefined || code === undefined) return results
    const leaseHex = toHex(lease.leaseId ?? new Uint8Array())
    const paid = this.payments.get(leaseHex)
    const timeoutOf = (t: dbc.task.v1.ITask): number => (t.deadlineMs ?? 0) > 0 ? Number(t.deadlineMs) : this.peer.policy.maxTaskMs
    const signalOf = (i: number): AbortSignal | undefined => opts.signals?.[i]
    const refuseAll = (c: string, error: string): dbc.task.v1.ITaskResult[] => { for (const i of run) { refuse(i, c, error); this.record(tasks[i], lease!, results[i], undefined, 0, recs) } return results }
    if (this.payment !== undefined) {
      if (paid === undefined) return refuseAll('PAYMENT_MISSING', 'the lease names no escrow')
      // ONE slot of the lease for the whole bundle (waits, bounded, as a task read ahead does)
      if (!await this.payment.slotFree(paid, allAborted(run.map(signalOf)))) return refuseAll('LEASE_SLOTS_BUSY', `the lease's ${paid.slots} slot(s) are all running a task and ${LEASE_SLOT_QUEUE} more wait (send the next when one returns)`)
    }
    const gate = this.payment
    /** Tasks the gate admitted and not yet finished: finished without a receipt should the bundle end early. */
    const open = new Set<number>()
    // what they may bill past their largest price (at most the price of the bundle's cut, plus under
    // a millisecond of rounding a task: no task starts after it, they run one after another in its
    // slot) counts in the credit rule of its next task and the job's others
    const ahead: BundleAhead = { open: 0n, top: 0n, ...(paid !== undefined ? { cap: taskPriceUnits(paid.prices, paid.gpus, paid.cores, TASK_BUNDLE_CUT_MS + run.length) } : {}) }
    const slot = this.leaseSlots.get(leaseHex)
    const bound = this.leaseResultBytes.get(leaseHex)
    let mark = performance.now()
    try {
      const outs = await this.peer.runBundle(run.map(i => ({ ...tasks[i], code: code!.code })), {
        signals: run.map(signalOf),
        consumer: lease.holder ?? undefined,
        resources: slot === undefined ? undefined : { cpuCores: slot.cores, gpuCount: slot.gpus },
        unsignedReceipt: opts.unsignedReceipt,
        cutMs: TASK_BUNDLE_CUT_MS,
        // its results are held until it ends: about what one task may return, not 16 times that (review18 F4)
        cutBytes: Math.max(bound ?? this.peer.policy.maxOutputBytes, TASK_BUNDLE_CUT_BYTES),
        admit: async (k, how) => {
          if (gate === undefined || paid === undefined) return undefined
          // the credit rule for this task as it starts, under the bundle's slot; tasks of the bundle
          // admitted and not finished (admitted together: the peer runs them in one go) count as `ahead` says
          const d = await gate.admitTask(paid, timeoutOf(tasks[run[k]]), { bundle: true, ahead, again: how?.again }).catch((err: Error) => err instanceof PaymentDeclinedError ? { ok: false as const, code: err.code, reason: err.message } : Promise.reject(err))
          if (!d.ok) return new DbcError(d.code, d.reason)
          open.add(run[k])
          return undefined
        },
        ran: (k, out) => {
          const i = run[k]
          const result = this.boundResult(tasks[i], out.result, bound)
          if (opts.charge !== undefined && out.result.ok !== true && (out.result.error ?? '').startsWith(`${ExecutorErrorCode.BAD_MODULE}:`)) this.chargeBadModule(tasks[i], code!.code, code!.hash, sender, opts.charge)
          // only ok results within the bound count as delivered, and not one cancelled before it ended (as runLeasedTask)
          if (open.delete(i)) gate?.finished(paid!, timeoutOf(tasks[i]), result === out.result && result.ok === true && signalOf(i)?.aborted !== true ? out.usage : undefined, { bundle: true, ahead })
          results[i] = result
          const now = performance.now()
          this.record(tasks[i], lease!, result, out.usage, now - mark, recs)
          mark = now
        }
      })
      for (const [k, out] of outs.entries()) {
        const i = run[k]
        if (!('refused' in out)) continue
        const c = (out.refused as { code?: string }).code ?? 'REFUSED'
        refuse(i, c, out.refused.message)
        this.record(tasks[i], lease, results[i], undefined, 0, recs)
      }
    } catch (err) {
      const c = (err as { code?: string }).code ?? 'REFUSED'
      for (const i of run) if (results[i] === undefined) { refuse(i, c, (err as Error).message); this.record(tasks[i], lease, results[i], undefined, 0, recs) }
    } finally {
      if (gate !== undefined && paid !== undefined) {
        for (const i of open) gate.finished(paid, timeoutOf(tasks[i]), undefined, { bundle: true, ahead })
        gate.bundleDone(paid) // once, after the last task
      }
    }
    return results
  }

  /** A result past the bound the job announced is not sent: a typed failure instead, the task's own, never billed. */
  private boundResult (task: dbc.task.v1.ITask, result: dbc.task.v1.ITaskResult, bound: number | undefined): dbc.task.v1.ITaskResult {
    if (bound === undefined || result.ok !== true || (result.output?.length ?? 0) <= bound) return result
    const error = `${RESULT_TOO_LARGE}: task ${task.index ?? 0}: its result of ${result.output?.length ?? 0} bytes is above the ${bound} bytes the job announced (manifest task.maxResultBytes)`
    return { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: false, code: RESULT_TOO_LARGE, error }
  }

  /** `usage`: the receipt the peer built for a task that ran (the one the result carries signed). */
  private record (task: dbc.task.v1.ITask, lease: dbc.task.v1.ILease, result: dbc.task.v1.ITaskResult, usage: dbc.receipt.v1.IUsageReceipt | undefined, durationMs: number, into?: ProviderTaskRecord[]): void {
    if (into === undefined && this.onTask === undefined) return
    const error = result.ok === true ? undefined : (result.error ?? '')
    const code = error === undefined ? undefined : (result.code != null && result.code !== '' ? result.code : 'TASK_FAILED')
    // a result with a receipt ran (ok or not); one without was refused before it ran
    const signed = result.receipt?.receipt
    let billedUnits = 0n
    if (usage != null) {
      try { billedUnits = BigInt(usage.amount ?? '0') } catch {}
    }
    try {
      const r: ProviderTaskRecord = {
        job: toHex(task.jobId ?? new Uint8Array()),
        task: task.index ?? 0,
        attempt: task.attempt ?? 0,
        submitter: lease.holder ?? new Uint8Array(),
        executor: (task.executor ?? '') === '' ? 'wasm' : task.executor ?? 'wasm',
        outcome: result.ok === true ? 'ok' : (signed != null && signed.length > 0 ? 'failed' : 'refused'),
        ...(code !== undefined ? { code, error } : {}),
        durationMs,
        resultBytes: result.output?.length ?? 0,
        billedUnits
      }
      if (into !== undefined) into.push(r); else this.onTask?.(r)
    } catch {} // a log sink's failure never fails the task
  }

  /** The task's result and, when it ran, the receipt the peer built (what the result's signed receipt encodes). */
  private async runLeasedTask (task: dbc.task.v1.ITask, lease: dbc.task.v1.ILease, sender: Uint8Array, opts: { signal?: AbortSignal, charge?: (err: WireError) => void, unsignedReceipt?: boolean }): Promise<{ result: dbc.task.v1.ITaskResult, usage?: dbc.receipt.v1.IUsageReceipt }> {
    const base = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt }
    const resolved = this.resolveCode(task)
    if ('result' in resolved) return resolved
    const { code, hash } = resolved
    // the escrow must cover this task and the payer's vouchers keep up with the work (typed refusal)
    const paid = this.payments.get(toHex(task.leaseId ?? new Uint8Array()))
    const timeoutMs = (task.deadlineMs ?? 0) > 0 ? Number(task.deadlineMs) : this.peer.policy.maxTaskMs
    if (this.payment !== undefined) {
      if (paid === undefined) return { result: { ...base, ok: false, code: 'PAYMENT_MISSING', error: 'PAYMENT_MISSING: the lease names no escrow' } }
      // a task read ahead waits (bounded) for one of the lease's slots, admitted only then
      if (!await this.payment.slotFree(paid, opts.signal)) return { result: { ...base, ok: false, code: 'LEASE_SLOTS_BUSY', error: `LEASE_SLOTS_BUSY: the lease's ${paid.slots} slot(s) are all running a task and ${LEASE_SLOT_QUEUE} more wait (send the next when one returns)` } }
      const d = await this.payment.admitTask(paid, timeoutMs, { reserved: true }).catch((err: Error) => err instanceof PaymentDeclinedError ? { ok: false as const, code: err.code, reason: err.message } : Promise.reject(err))
      if (!d.ok) return { result: { ...base, ok: false, code: d.code, error: `${d.code}: ${d.reason}` } }
    }
    let receipt: dbc.receipt.v1.IUsageReceipt | undefined
    try {
      // the lease's slot sizes the task's (a container's CPU limit, its GPUs; the peer drops GPUs for executors that cannot use them)
      const slot = this.leaseSlots.get(toHex(task.leaseId ?? new Uint8Array()))
      const resources = slot === undefined ? undefined : { cpuCores: slot.cores, gpuCount: slot.gpus }
      const out = await this.peer.runTask({ ...task, code }, { signal: opts.signal, consumer: lease.holder ?? undefined, resources, unsignedReceipt: opts.unsignedReceipt })
      // a result past the bound the job announced is not sent (the submitter reads no larger frame)
      const bounded = this.boundResult(task, out.result, this.leaseResultBytes.get(toHex(task.leaseId ?? new Uint8Array())))
      if (bounded !== out.result) return { result: bounded }
      const result = out.result
      // only ok results count as delivered: the submitter pays accepted copies only (payment-gate.ts finished)
      if (paid !== undefined && result.ok === true) receipt = out.usage
      if (opts.charge !== undefined && result.ok !== true && (result.error ?? '').startsWith(`${ExecutorErrorCode.BAD_MODULE}:`)) this.chargeBadModule(task, code, hash, sender, opts.charge)
      return { result, usage: out.usage }
    } catch (err) {
      // Refused before running (no slot, limits): the runner retries it elsewhere.
      const code = (err as { code?: string }).code ?? 'REFUSED'
      return { result: { ...base, ok: false, code, error: `${code}: ${(err as Error).message}` } }
    } finally {
      // a task cancelled (or its lease stream gone) before it ended sends no result (task-lease-stream.ts):
      // the submitter never gets it and never pays it, so it is not counted delivered either (review F6)
      if (paid !== undefined) this.payment?.finished(paid, timeoutMs, opts.signal?.aborted === true ? undefined : receipt)
    }
  }

  /** The task's module: its own code (checked against its hash, then kept), or the one kept under its hash. */
  private resolveCode (task: dbc.task.v1.ITask): { code: Uint8Array, hash: string } | { result: dbc.task.v1.ITaskResult } {
    const base = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt }
    // Code travels once per provider; later tasks name it by hash.
    let code = task.code ?? new Uint8Array()
    const hash = toHex(task.codeHash ?? new Uint8Array())
    if (code.length === 0) {
      const cached = this.code.get(hash)
      if (cached === undefined) return { result: { ...base, ok: false, code: 'CODE_MISSING', error: 'CODE_MISSING: this provider does not hold the module; send the code with the task' } }
      code = cached
    } else if (hash !== '') {
      if (createHash('sha256').update(code).digest('hex') !== hash) return { result: { ...base, ok: false, code: 'CODE_HASH_MISMATCH', error: 'CODE_HASH_MISMATCH: the code does not match its hash' } }
      this.code.set(hash, code)
      if (this.code.size > 32) this.code.delete(this.code.keys().next().value as string)
    }
    return { code, hash }
  }

  /**
   * A payer's voucher (TaskMessage.voucher): kept when it verifies against the job's on-chain
   * payer; returns the voucher now held for the job. Throws a WireError (charged) for a bad one.
   */
  async acceptVoucher (voucher: dbc.task.v1.IVoucher, _sender: Uint8Array): Promise<dbc.task.v1.IVoucher> {
    if (this.payment === undefined) throw new PaymentDeclinedError('PAYMENT_OFF', 'this provider takes no vouchers (it runs without a chain)')
    return await this.payment.acceptVoucher(voucher)
  }

  /**
   * The module was refused before it ran. Its sender is charged only when our own submitter refuses the
   * same module before sending (moduleRefusal: the same validator, default limits, the task's memory cap;
   * 256 MiB, the manifest default, when the task names none), so no honest CLI user ever pays; how often
   * is ModuleOffences' rule. Tasks stopped while running (memory cap, timeout, trap) are never charged.
   */
  private chargeBadModule (task: dbc.task.v1.ITask, code: Uint8Array, hash: string, sender: Uint8Array, charge: (err: WireError) => void): void {
    if ((task.executor ?? '') !== '' && task.executor !== 'wasm') return
    const why = code.length > 0 ? moduleRefusal(code, (task.memoryLimitMib ?? 0) > 0 ? Number(task.memoryLimitMib) : 256) : undefined
    if (why === undefined) return
    const module = hash !== '' ? hash : createHash('sha256').update(code).digest('hex')
    if (this.badModules.refused(toHex(sender), module)) charge(new WireError(ExecutorErrorCode.BAD_MODULE, `sent a task module that providers refuse at validation: ${why.message}`))
  }
}
