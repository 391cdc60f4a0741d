// Adapts a ComputePeer (src/compute) to the runner's provider interface: the peer answers
// lease requests with signed offers and runs tasks; this adds the lease-holder checks.
import { createHash } from 'node:crypto'
import type { dbc } from '../wire/gen/wire.js'
import type { ComputePeer } from '../compute/index.js'
import { toHex } from '../core/identity/index.js'
import { checkTaskUnderLease } from '../core/scheduler/ownership.js'
import { nodeVerifyByPeerId } from './signing.js'
import type { LocalProvider } from './local-transport.js'
import { LeaseBook } from './lease-book.js'
import { WireError } from '../errors.js'
import { ExecutorErrorCode } from '../compute/executors/types.js'
import { ModuleOffences } from '../core/compute/module-offences.js'
import { moduleRefusal } from './manifest-file.js'

export class ComputePeerProvider implements LocalProvider {
  readonly id: string
  private readonly leases = new Map<string, dbc.task.v1.ILease>()
  private readonly code = new Map<string, Uint8Array>()
  /** The offers it issued (a lease must name one) and the leases it closed. */
  readonly book = new LeaseBook()
  /** Input bytes each recent offer's request announced, by offer id (bounded: offers expire in seconds). */
  private readonly announced = new Map<string, number>()
  /** Per open lease: its holder and the input bytes its request announced (for the frame limit). */
  private readonly leaseInputs = new Map<string, { holder: string, bytes: number, expiresAt: number }>()
  /** Modules refused at validation, by (sender, module): which refusals charge the sender. */
  private readonly badModules = new ModuleOffences()

  constructor (readonly peer: ComputePeer, id?: string) {
    this.id = id ?? toHex(peer.peerId).slice(-16)
  }

  /** `sender`: the authenticated peer asking (over libp2p); else the request's own requester. */
  offer (req: dbc.task.v1.ILeaseRequest, sender?: Uint8Array): dbc.task.v1.IOffer {
    const offer = this.peer.offer(req)
    this.book.issued(offer, sender ?? req.requester, Date.now())
    if ((offer.offerId ?? new Uint8Array()).length > 0 && (offer.refusal ?? '') === '') {
      if (this.announced.size >= 1024) this.announced.delete(this.announced.keys().next().value as string)
      this.announced.set(toHex(offer.offerId ?? new Uint8Array()), Math.max(0, Number(req.maxInputBytes ?? 0)))
    }
    return offer
  }

  openLease (lease: dbc.task.v1.ILease, sender: Uint8Array): void {
    this.book.admit({ lease, sender, self: this.peer.peerId, now: Date.now(), verify: nodeVerifyByPeerId })
    const id = toHex(lease.leaseId ?? new Uint8Array())
    this.leases.set(id, lease)
    // a lease for an offer this provider no longer remembers keeps the policy's own input limit
    const bytes = this.announced.get(toHex(lease.offerId ?? new Uint8Array())) ?? this.peer.policy.maxInputBytes
    this.leaseInputs.set(id, { holder: toHex(sender), bytes, expiresAt: Number(lease.expiresAt ?? 0) })
  }

  closeLease (leaseId: Uint8Array): void {
    this.leases.delete(toHex(leaseId))
    this.leaseInputs.delete(toHex(leaseId))
    this.book.closedLease(leaseId)
  }

  leasedInputBytes (sender: Uint8Array): number | undefined {
    const holder = toHex(sender)
    const now = Date.now()
    let most: number | undefined
    for (const l of this.leaseInputs.values()) {
      if (l.holder !== holder || (l.expiresAt > 0 && l.expiresAt < now)) continue
      most = Math.max(most ?? 0, l.bytes)
    }
    return most
  }

  async runTask (task: dbc.task.v1.ITask, sender: Uint8Array, opts: { signal?: AbortSignal, charge?: (err: WireError) => void } = {}): Promise<dbc.task.v1.ITaskResult> {
    const base = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt }
    const lease = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
    // a lease never opened here throws (charged); one closed lately is refused quietly
    const admitted = lease === undefined ? this.book.missingLease(task.leaseId ?? new Uint8Array()) : checkTaskUnderLease({ task, lease, sender, now: Date.now(), verify: nodeVerifyByPeerId })
    if (!admitted.ok) return { ...base, ok: false, error: `refused: ${admitted.reason}` }
    // Code travels once per provider; later tasks name it by hash.
    let code = task.code ?? new Uint8Array()
    const hash = toHex(task.codeHash ?? new Uint8Array())
    if (code.length === 0) {
      const cached = this.code.get(hash)
      if (cached === undefined) return { ...base, ok: false, error: 'CODE_MISSING: this provider does not hold the module; send the code with the task' }
      code = cached
    } else if (hash !== '') {
      if (createHash('sha256').update(code).digest('hex') !== hash) return { ...base, ok: false, error: 'CODE_HASH_MISMATCH: the code does not match its hash' }
      this.code.set(hash, code)
      if (this.code.size > 32) this.code.delete(this.code.keys().next().value as string)
    }
    try {
      const { result } = await this.peer.runTask({ ...task, code }, { signal: opts.signal, consumer: lease!.holder ?? undefined })
      if (opts.charge !== undefined && result.ok !== true && (result.error ?? '').startsWith(`${ExecutorErrorCode.BAD_MODULE}:`)) this.chargeBadModule(task, code, hash, sender, opts.charge)
      return result
    } catch (err) {
      // Refused before running (no slot, limits): the runner retries it elsewhere.
      return { ...base, ok: false, error: `${(err as { code?: string }).code ?? 'REFUSED'}: ${(err as Error).message}` }
    }
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
