// JobRunner: the pump around one job's sans-IO session (src/core/scheduler/job-session.ts: the
// job machine, the lease search, the budget ledger and the code cache, and the decisions between
// them). The runner only drives: it performs the machine's commands, runs a lease round
// (runner-leases.ts) when the session's `nextRoundAt` comes, sends copies (runner-send.ts) and
// feeds back what came back, with the clock, the transport and the JobStore, where every step
// is written before it is acted on (runner-store.ts).
import { DbcError } from '../errors.js'
import { createHash } from 'node:crypto'
import { dbc } from '../wire/gen/wire.js'
import { toHex } from '../core/identity/index.js'
import { createRng } from '../core/rng.js'
import { JobMachine, JobSession, leaseCapOf, deadlineAt, jobPolicyOf, type JobCommand } from '../core/scheduler/index.js'
import { NO_ANSWER_CODES } from '../core/scheduler/ports.js'
import { hexToBytes, type LeaseRoundResult } from './runner-leases.js'
import { RunnerState, KEY } from './runner-state.js'
import { sendCopy, taskIdOf, replyOf, type CopySender } from './runner-send.js'
import { persistStep, type CopyRow } from './runner-store.js'
import type { JobSummary } from './runner-types.js'

export type { JobRunnerInit, JobSummary, RunnerPayment, TaskExplanation } from './runner-types.js'

type RunCommand = Extract<JobCommand, { type: 'run' }>

export class JobRunner extends RunnerState {
  private sender!: CopySender
  private readonly inflight = new Map<number, AbortController>()
  private rows: CopyRow[] = []
  private tickScheduled = false
  private readonly timers: { timeout?: NodeJS.Timeout, timeoutAt: number, round?: NodeJS.Timeout, roundAt: number, deadline?: NodeJS.Timeout } = { timeoutAt: Infinity, roundAt: Infinity }
  private unsubscribe?: () => void
  private finish?: (s: JobSummary) => void
  private fail?: (err: unknown) => void

  /** Runs (or resumes, when the store holds its state) the job to the end. */
  async run (opts: { signal?: AbortSignal } = {}): Promise<JobSummary> {
    const l = this.leases
    l.signal = opts.signal
    const restored = await this.prepare()
    // which tasks are spot-checked comes from a CSPRNG-seeded rng unless a test fixes the seed
    const machine = new JobMachine(jobPolicyOf(this.m, l.taskCount, this.init), this.rep, createRng(this.init.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]), restored)
    this.session = new JobSession(machine, this.search, this.budget, leaseCapOf(this.init))
    const codeHash = new Uint8Array(createHash('sha256').update(this.init.code).digest())
    this.sender = { m: this.m, jobId: this.jobId, jobIdBytes: hexToBytes(this.jobId), codeHash, code: this.init.code, cache: this.session.code, transport: this.init.transport, leaseIds: l.leaseIds, fileSize: l.fileSize, baseDir: this.init.baseDir, payNow: async (p) => { await this.payments.payNow(p) }, bundles: this.bundles }
    // a heartbeat may resume a lease a lost copy suspended: its queued copies go out
    this.unsubscribe = this.init.transport.onHeartbeat(hb => { if (machine.handleHeartbeat(this.now(), toHex(hb.leaseId))) this.scheduleTick() })
    const result = new Promise<JobSummary>((resolve, reject) => { this.finish = resolve; this.fail = reject })
    const onAbort = (): void => { this.cancel() }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const deadline = deadlineAt(this.m, this.init.submittedAt ?? this.startedAt)
    if (deadline !== undefined) this.timers.deadline = setTimeout(() => { machine.handleDeadline(this.now()); this.scheduleTick() }, Math.max(0, deadline - this.now()))
    try {
      // while the pump runs, settled copies are paid in its steps' transactions
      this.payments.attach(() => { if (this.done) return false; this.scheduleTick(); return true })
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
      this.session.makeRoom(this.now()) // its releases go out in this step, before the round they make room for
      this.step(true)
      if (this.machine.isFinished || this.machine.isCancelled) { this.complete(); return }
      this.arm()
    } catch (err) {
      this.done = true
      this.fail?.(err)
    }
  }

  /** Polls the machine: writes the step, reports its events, performs its commands. */
  private step (running: boolean): void {
    const cmds = this.machine.pollCommands()
    const events = this.session.pollEvents(this.now())
    const rows = this.rows
    this.rows = []
    // the payments queued since the last batch go in its transaction when their batch is due (one
    // commit for both; the last step takes what is queued), their vouchers due once it is committed
    const batch = running ? this.payments.batchDue : this.payments.hasQueued
    const paid = persistStep(this.init.store, this.jobId, this.now(), cmds, events, rows, (i, a) => this.outputs.get(i * KEY + a), batch ? () => this.payments.recordQueued() : undefined)
    paid?.()
    for (const e of events) this.onEvent(e)
    for (const c of cmds) if (running || c.type !== 'run') this.perform(c)
    if (running && events.length > 0) this.reportProgress()
  }

  /** Timers for the machine's next timeout and the session's next lease round. */
  private arm (): void {
    const t = this.timers
    const next = this.machine.nextTimeout()
    if (next !== undefined && next < t.timeoutAt) {
      if (t.timeout !== undefined) clearTimeout(t.timeout)
      t.timeoutAt = next
      t.timeout = setTimeout(() => { t.timeout = undefined; t.timeoutAt = Infinity; this.scheduleTick() }, Math.max(0, next - this.now()))
    }
    const round = this.session.nextRoundAt(this.now())
    if (round === undefined || round >= t.roundAt) return
    if (t.round !== undefined) clearTimeout(t.round)
    t.roundAt = round
    t.round = setTimeout(() => { t.round = undefined; t.roundAt = Infinity; void this.runRound() }, Math.max(0, round - this.now()))
  }

  /** One lease round, in the mode the session says; its outcome goes back to the session. */
  private async runRound (): Promise<void> {
    const at = this.done ? undefined : this.session.nextRoundAt(this.now())
    if (at === undefined || at > this.now()) { this.scheduleTick(); return }
    const mode = this.session.startRound()
    let round: LeaseRoundResult
    try {
      round = await this.leases.round(mode, this.search.penalised)
    } catch (err) {
      round = { offers: 0, refusals: [], leased: 0, liveLeases: this.machine.liveLeases().length, error: (err as Error).message }
    }
    if (this.done) return
    if (round.stopped === true) this.session.roundStopped()
    else this.session.handleRound(this.now(), round)
    this.scheduleTick()
  }

  /** `need-leases` and `more-leases` need nothing here: the next arm() asks the session when to search. */
  private perform (c: JobCommand): void {
    if (c.type === 'run') {
      const key = c.index * KEY + c.attempt
      this.payments.sent(key, this.now())
      if (this.session.copySent(this.now(), key, this.leases.pricePerCopy.get(c.provider) ?? 0, this.init.payment?.exhausted)) this.scheduleTick()
      void this.send(c, key)
    } else if (c.type === 'cancel') {
      this.inflight.get(c.index * KEY + c.attempt)?.abort(new Error('copy cancelled'))
    } else if (c.type === 'release-lease') {
      const id = this.leases.leaseIds.get(c.leaseId)
      if (id !== undefined) this.init.transport.closeLease?.(c.provider, id)
    }
  }

  private async send (c: RunCommand, key: number): Promise<void> {
    const ac = new AbortController()
    this.inflight.set(key, ac)
    let res: dbc.task.v1.ITaskResult
    let unreachable = false
    try {
      // a copy waiting for admission (a WebRTC lease's result bound, src/net/tasks.ts) has no deadline; it is timed from when it goes
      res = await sendCopy(this.sender, c, ac.signal, (admitted) => {
        if (this.done) return
        if (!admitted) { this.machine.handleCopyWaiting(c.index, c.attempt); return }
        this.machine.handleCopyAdmitted(this.now(), c.index, c.attempt); this.scheduleTick()
      })
    } catch (err) {
      if (ac.signal.aborted || this.done) return
      // no answer (stream reset, relay gone, lease closed): the copy is lost, not failed by the
      // provider; a typed error of ours (bad reply, unreadable input) stays a failed copy
      res = { ok: false, error: (err as Error).message }
      // (the overlay losing the message is RouteLostError: src/net/routes, told by name)
      unreachable = !(err instanceof DbcError) || NO_ANSWER_CODES.has(err.code) || err.name === 'RouteLostError'
    } finally {
      this.inflight.delete(key)
    }
    if (!this.done) this.onResult(c, key, res, unreachable)
  }

  private onResult (c: RunCommand, key: number, res: dbc.task.v1.ITaskResult, unreachable = false): void {
    const now = this.now()
    const { output, hash, receipt, claimedHash } = replyOf(res)
    const ids = { jobId: this.sender.jobIdBytes, taskId: taskIdOf(this.jobId, c.index, c.attempt), provider: this.leases.providerBytes.get(c.provider) }
    const billed = this.payments.billOf(key, c.provider, receipt === undefined ? undefined : res.receipt, ids, this.budget.predictedOf(key))
    this.payments.returnedCopy(key, now, receipt)
    // the provider says it had closed the lease (LEASE_CLOSED: our side may not know yet, its stream
    // died on a relay): the copy is lost and the lease ends here too, so a provider answering so on
    // purpose loses its lease each time and counts a failure in a row per lease (review M4); our own
    // transport reports a stream that ended by throwing (above), never as a provider's code
    if (res.ok !== true && NO_ANSWER_CODES.has(res.code ?? '') && !unreachable) {
      unreachable = true
      this.machine.handleLeaseLost(now, c.leaseId, `the provider closed the lease (${res.code ?? ''})`)
    }
    const error = res.error == null ? undefined : readableCopyError(res.error, ids.taskId, c.index, c.attempt)
    const v = this.session.handleAnswer(now, c, key, { ok: res.ok === true, hash, claimedHash, error, code: res.code ?? undefined, billed, unreachable }, this.init.payment?.exhausted)
    if (v.verdict === 'unknown') return
    if (v.ok && output !== undefined && (v.verdict === 'pending' || v.verdict === 'agreed')) this.outputs.set(key, output)
    this.rows.push({ index: c.index, attempt: c.attempt, outcome: v.verdict, hash: v.hash, error: v.error, endedAt: now, receipt })
    this.scheduleTick()
  }

  private complete (): void {
    if (this.done) return
    this.step(false) // what the last tick produced, written before reporting
    this.done = true
    this.payments.attach(undefined)
    for (const ac of this.inflight.values()) ac.abort(new Error('job ended'))
    const p = this.machine.progress()
    const summary = this.summary(p)
    this.init.store?.saveReputation(this.rep.toJSON())
    this.init.onProgress?.(p)
    this.finish?.(summary)
  }

  private stop (): void {
    this.done = true
    this.payments.attach(undefined)
    this.stopProgress()
    for (const t of [this.timers.timeout, this.timers.round, this.timers.deadline]) if (t !== undefined) clearTimeout(t)
    this.unsubscribe?.()
  }
}

/**
 * A provider's error names the copy by its task id, which travels as bytes and is printed as hex
 * (`task 3137643032…3a303a31: the task hit its memory cap`, 140+ digits of "JOB:INDEX:ATTEMPT"): in
 * explain, job logs and the dashboard it reads `task 0 copy 1` instead. Only this copy's own id is
 * replaced; the rest of the text is the provider's, as before (cut and made printable downstream).
 */
export function readableCopyError (error: string, taskId: Uint8Array, index: number, attempt: number): string {
  const hex = toHex(taskId)
  // peer text: bounded before the replace (the session keeps its first 1 KiB anyway)
  const text = error.length > 8192 ? error.slice(0, 8192) : error
  return hex === '' ? text : text.split(hex).join(`${index} copy ${attempt}`)
}

