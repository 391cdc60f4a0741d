// The compute-peer side of a node: probes and benchmarks the machine, serves lease requests
// and tasks on /dbc/task/1.0.0, and reports its capabilities in `dbc node status`.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { ComputePeer } from '../compute/index.js'
import { registerTaskProtocol, TASK_PROTOCOL } from '../net/tasks.js'
import { ComputePeerProvider, type ProviderTaskRecord } from '../jobs/compute-provider.js'
import { computePolicyInit, policyReport } from './provider-policy.js'
import { peerIdTextOf } from '../net/peer-ids.js'
import { formatCoins } from '../core/settlement/stake.js'
import type { Logger } from 'pino'
import { RepeatLimiter, LOG_REPEAT_MS } from '../net/guard/index.js'
import type { DaemonContext, Subsystem } from './daemon.js'
import { PaymentGate, type PaymentPort } from '../jobs/payment-gate.js'
import { ProviderLedgerStore } from '../jobs/provider-ledger-store.js'
import type { VoucherDomain } from '../core/settlement/voucher.js'
import type { Bridge } from '../chain/index.js'

export interface ComputeSubsystemInit {
  /** The EVM address receipts name for payment (the chain bridge's account). */
  payoutAddress?: () => string | undefined
  /**
   * The chain bridge: leases and tasks are admitted only against escrow on its chain. Every node
   * runs one (a lone sandbox node on its embedded chain), so work is never free; without it
   * (tests that build the subsystem alone) the gate is off.
   */
  bridge?: () => Bridge | undefined
  /** Unsigned work extended to a payer, in task prices (config provider.creditTasks; default 1). */
  creditTasks?: number
  /** Shortest escrow dispute window accepted, seconds (config provider.minDisputeWindowS; default 3600). */
  minDisputeWindowS?: number
  /** Prices this node offers, over the config's provider.priceCpuHour / priceGpuHour (which the daemon uses when these are unset). */
  prices?: { priceCpuHour?: number, priceGpuHour?: number | Record<string, number> }
}

/** The payment gate's view of the chain bridge (its domain is read once, when the chain is ready). */
export function bridgePaymentPort (bridge: () => Bridge | undefined): PaymentPort {
  let domain: VoucherDomain | undefined
  let asking: Promise<void> | undefined
  let binding: Uint8Array | undefined
  let signing: Promise<void> | undefined
  const need = (): Bridge => {
    const b = bridge()
    if (b === undefined) throw new Error('the chain bridge is not running')
    return b
  }
  return {
    get address () { return need().account },
    domain: () => {
      if (domain !== undefined) return domain
      // the contract address comes from the chain (deployed or found at start): ask once, answer from then on
      asking ??= need().domain().then(d => { domain = d }).finally(() => { asking = undefined })
      asking.catch(() => {})
      throw new Error('the chain is not ready yet')
    },
    escrow: async (key, opts) => await need().escrow(key, opts),
    redeemed: async (key) => await need().redeemed(key),
    acceptVoucher: async (sv, opts) => {
      const r = await need().acceptVoucher(sv, opts)
      if (!r.ok && r.code !== 'STALE') throw new Error(`${r.code}: ${r.reason}`)
    },
    payoutBinding: (peer) => {
      if (binding !== undefined) return binding
      // signed once (after the domain is known), answered from then on
      signing ??= need().signPayoutBinding(peer).then(b => { binding = b }).finally(() => { signing = undefined })
      signing.catch(() => {})
      throw new Error('the payout binding is being signed')
    }
  }
}

/** The log's `billed` of a copy that failed or was refused. */
export const NOT_BILLED = 'not billed (only delivered results are paid)'

/** How often a drain looks whether the tasks running ended and their results went out. */
const DRAIN_POLL_MS = 100

export class ComputeSubsystem implements Subsystem {
  readonly name = 'compute'
  constructor (private readonly init: ComputeSubsystemInit = {}) {}
  peer: ComputePeer | undefined
  /** Escrow and voucher checks of the work this node does for others. */
  payment: PaymentGate | undefined
  /** What the task protocol serves (also over the overlay's sealed envelopes: src/net/overlay/task-envelopes.ts). */
  taskProvider: ComputePeerProvider | undefined
  private ctx: DaemonContext | undefined
  /** Results of tasks that ran, being written on the task protocol (a drain waits for them to go out). */
  private readonly answers = { writing: 0 }

  async start (ctx: DaemonContext): Promise<void> {
    this.ctx = ctx
    const tmpDir = join(ctx.config.dataDir, 'tasks')
    mkdirSync(tmpDir, { recursive: true, mode: 0o700 })
    // the operator's policy (config provider:, containers:): executors, slots, GPUs offered, prices, per-task caps
    const fromConfig = computePolicyInit(ctx.config)
    const peer = new ComputePeer({
      ...fromConfig,
      secretKey: ctx.identity.secretKey,
      declaredGpus: ctx.config.gpus === '' ? undefined : ctx.config.gpus,
      tmpDir,
      dataDir: ctx.config.dataDir,
      payoutAddress: this.init.payoutAddress?.(),
      benchmark: process.env.DBC_SKIP_BENCHMARK !== '1',
      // container tasks only where the operator listed images (the only programs they may name)
      containers: ctx.config.containers,
      policy: {
        ...fromConfig.policy,
        ...(this.init.prices?.priceCpuHour !== undefined ? { priceCpuHour: this.init.prices.priceCpuHour } : {}),
        ...(this.init.prices?.priceGpuHour !== undefined ? { priceGpuHour: this.init.prices.priceGpuHour } : {})
      }
    })
    await peer.start()
    capTaskMemory(peer.policy, peer.capabilities().memoryMib, ctx.log)
    this.peer = peer
    let payment: PaymentGate | undefined
    if (this.init.bridge !== undefined) {
      const port = bridgePaymentPort(this.init.bridge)
      try { port.domain() } catch {} // starts reading the domain
      try { port.payoutBinding?.(peer.peerId) } catch {} // and signing the payout binding offers carry
      // the ledger of unsigned work is kept in the node's store: a restart forgets no debt
      payment = new PaymentGate(port, { creditTasks: this.init.creditTasks, minDisputeWindowS: this.init.minDisputeWindowS, ledger: new ProviderLedgerStore(ctx.store) })
      this.payment = payment
    }
    const refusedLines = new RepeatLimiter(LOG_REPEAT_MS)
    const provider = new ComputePeerProvider(peer, undefined, { payment, onTask: r => { logTask(ctx.log, r, refusedLines) }, onBundle: rs => { logTasks(ctx.log, rs, refusedLines) } })
    this.taskProvider = ctx.metrics?.meterProvider(provider) ?? provider
    await registerTaskProtocol(ctx.host, this.taskProvider, { onBadInput: ctx.reportBadInput, answers: this.answers })
    const caps = peer.capabilities()
    ctx.log.info({ cpu: caps.cpu, gpus: caps.gpus, executors: caps.executors, unavailable: caps.unavailable, policy: policyReport(ctx.config, peer) }, 'compute peer ready')
  }

  /** Tasks running here now (what a graceful stop waits for). */
  inFlight (): number { return this.peer?.executing ?? 0 }

  /**
   * The first half of a graceful stop: new leases are refused (BUSY), the tasks running finish and
   * their results (receipts signed) go out; tasks not started wait for stop(). Returns when nothing
   * runs and every result was written, or when `signal` aborts (the deadline, or `dbc node stop
   * --now`): stop() then cuts short what still runs (PEER_STOPPED: failed, not paid).
   */
  async drain (signal: AbortSignal): Promise<void> {
    const peer = this.peer
    const log = this.ctx?.log
    if (peer === undefined) return
    peer.drain()
    const running = peer.executing
    if (running > 0) log?.info({ running }, `draining: ${running} task(s) running here finish before the node stops; new leases are refused`)
    // a task's return and its result's count are one turn apart (no I/O between): this check, a timer, never falls between
    while (!signal.aborted && (peer.executing > 0 || this.answers.writing > 0)) {
      await new Promise<void>(resolve => {
        const t = setTimeout(done, DRAIN_POLL_MS)
        function done (): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
        signal.addEventListener('abort', done, { once: true })
      })
    }
    const left = peer.executing
    if (left > 0) log?.warn({ running: left }, `drain cut short: ${left} task(s) still running are stopped; they fail PEER_STOPPED and are not paid`)
    else if (running > 0) log?.info(`drained: the ${running} task(s) running at the stop finished and their results were sent`)
  }

  async stop (): Promise<void> {
    await this.ctx?.host.unhandle(TASK_PROTOCOL).catch(() => {})
    await this.peer?.stop()
  }

  status (): Record<string, unknown> {
    if (this.peer === undefined) return { ready: false }
    const c = this.peer.capabilities()
    const policy = this.ctx === undefined ? undefined : policyReport(this.ctx.config, this.peer)
    return { cpu: c.cpu, memoryMib: c.memoryMib, gpus: c.gpus, gpuScores: c.gpuScores, executors: c.executors, unavailable: c.unavailable, priceGpuHour: c.priceGpuHour, priceCpuHour: c.priceCpuHour, tasksRun: this.peer.tasksRun, running: this.peer.executing, ...(policy !== undefined ? { policy } : {}), ...(this.payment !== undefined ? { payments: this.payment.status() } : {}) }
  }
}

/**
 * provider.maxTask.memoryMiB above the memory offered to tasks when slots.memoryMiB is unset (3/4 of
 * this machine's; config-validate refuses the two set in contradiction): capped to what a task could
 * ever get here, with a warning, so a config shared with bigger machines still starts.
 */
export function capTaskMemory (policy: { maxTaskMemoryMib: number }, offeredMib: number, log: Pick<Logger, 'warn'>): void {
  if (policy.maxTaskMemoryMib <= offeredMib || offeredMib <= 0) return
  log.warn({ maxTaskMemoryMiB: policy.maxTaskMemoryMib, offeredMiB: offeredMib }, `config "provider.maxTask.memoryMiB": ${policy.maxTaskMemoryMib} MiB is above the ${offeredMib} MiB this node offers to tasks (3/4 of its memory; provider.slots.memoryMiB is unset): capped at ${offeredMib} MiB`)
  policy.maxTaskMemoryMib = offeredMib
}

/**
 * The operator's record of one task it answered under a lease: one info line per task that ran; tasks
 * refused before running (cheap for a lease holder to send) one line per job and code per window.
 */
export function logTask (log: Pick<Logger, 'info'>, r: ProviderTaskRecord, refused?: RepeatLimiter, now = Date.now()): void {
  let repeated = 0
  if (r.outcome === 'refused' && refused !== undefined) {
    const line = refused.check(now, `${r.job}:${r.code ?? ''}`)
    if (!line.write) return
    repeated = line.suppressed
  }
  let submitter: string
  try { submitter = peerIdTextOf(r.submitter) } catch { submitter = 'unknown' }
  log.info({
    job: r.job,
    task: r.task,
    attempt: r.attempt,
    submitter,
    executor: r.executor,
    outcome: r.outcome,
    ...(r.code !== undefined ? { code: r.code } : {}),
    durationMs: Math.round(r.durationMs),
    resultBytes: r.resultBytes,
    // only a delivered (ok) result is paid: a copy that failed or was cut short by a stop is not,
    // whatever its receipt measured (before, `billed=` read as if it were paid)
    ...(r.outcome === 'ok'
      ? { billed: `${formatCoins(r.billedUnits)} DBC`, billedUnits: r.billedUnits.toString() }
      : { billed: NOT_BILLED, billedUnits: '0', ...(r.billedUnits > 0n ? { unpaid: `${formatCoins(r.billedUnits)} DBC` } : {}) }),
    ...(repeated > 0 ? { repeated } : {})
  }, `task ${r.outcome}: job ${r.job} task ${r.task} (${r.executor}) for ${submitter}`)
}

/**
 * The records of one TaskBundle (its tasks run one after another in one slot): each task that
 * failed or was refused gets its own line, as logTask writes it; the tasks that ran ok share ONE
 * info line per job, executor and submitter naming every task (`tasks`, `attempts`) with their
 * summed time, result bytes and bill (a bundle of tiny tasks wrote up to 16 lines, a good part of
 * a provider's CPU per task). A lone ok task keeps logTask's line.
 */
export function logTasks (log: Pick<Logger, 'info'>, rs: readonly ProviderTaskRecord[], refused?: RepeatLimiter, now = Date.now()): void {
  const ok = new Map<string, ProviderTaskRecord[]>()
  for (const r of rs) {
    if (r.outcome !== 'ok') { logTask(log, r, refused, now); continue }
    const key = `${r.job}:${r.executor}:${peerKey(r.submitter)}`
    const group = ok.get(key)
    if (group === undefined) ok.set(key, [r]); else group.push(r)
  }
  for (const group of ok.values()) {
    if (group.length === 1) { logTask(log, group[0], refused, now); continue }
    const r = group[0]
    let submitter: string
    try { submitter = peerIdTextOf(r.submitter) } catch { submitter = 'unknown' }
    let durationMs = 0
    let resultBytes = 0
    let billedUnits = 0n
    for (const t of group) { durationMs += t.durationMs; resultBytes += t.resultBytes; billedUnits += t.billedUnits }
    const tasks = group.map(t => t.task)
    log.info({
      job: r.job,
      tasks,
      attempts: group.map(t => t.attempt),
      count: group.length,
      submitter,
      executor: r.executor,
      outcome: 'ok',
      durationMs: Math.round(durationMs),
      resultBytes,
      billed: `${formatCoins(billedUnits)} DBC`,
      billedUnits: billedUnits.toString()
    }, `tasks ok: job ${r.job} tasks ${tasks.join(', ')} (${r.executor}) for ${submitter}`)
  }
}

function peerKey (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')
}
