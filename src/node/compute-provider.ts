// Adapts the ComputePeer to the provider side of the job transport: offers come from the
// peer's policy; a lease is admitted only when signed by its holder, granted by us and sent by
// the holder; a task only from that holder, under that lease. Code is cached by hash so a job
// sends its module once per provider, not once per task.
import type { ComputePeer } from '../compute/index.js'
import type { LocalProvider } from '../jobs/local-transport.js'
import { checkLease, checkTaskUnderLease } from '../core/scheduler/index.js'
import { toHex, bytesEqual } from '../core/identity/index.js'
import { dbc } from '../wire/gen/wire.js'
import { ExecutorError } from '../errors.js'
import { sha256 } from '@noble/hashes/sha2.js'

const MAX_LEASES = 4096
const MAX_CODE_CACHE = 32

export class ComputeProvider implements LocalProvider {
  readonly id: string
  private readonly leases = new Map<string, dbc.task.v1.ILease>()
  private readonly code = new Map<string, Uint8Array>()

  constructor (private readonly peer: ComputePeer, private readonly now: () => number = Date.now) {
    this.id = toHex(peer.peerId)
  }

  offer (req: dbc.task.v1.ILeaseRequest): dbc.task.v1.IOffer {
    return this.peer.offer(req)
  }

  openLease (lease: dbc.task.v1.ILease, sender: Uint8Array): void {
    const ok = checkLease({ lease, sender, self: this.peer.peerId, now: this.now() })
    if (!ok.ok) throw new ExecutorError('LEASE_REFUSED', `lease refused: ${ok.reason}`)
    this.leases.set(toHex(lease.leaseId ?? new Uint8Array()), lease)
    if (this.leases.size > MAX_LEASES) {
      for (const [k, l] of this.leases) if ((l.expiresAt ?? 0) <= this.now()) this.leases.delete(k)
      if (this.leases.size > MAX_LEASES) this.leases.delete(this.leases.keys().next().value as string)
    }
  }

  closeLease (leaseId: Uint8Array): void {
    this.leases.delete(toHex(leaseId))
  }

  /** Whether this provider holds the module with this hash (so the task may omit the code). */
  hasCode (hash: Uint8Array): boolean {
    return this.code.has(toHex(hash))
  }

  async runTask (task: dbc.task.v1.ITask, sender: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<dbc.task.v1.ITaskResult> {
    const lease = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
    if (lease === undefined) throw new ExecutorError('NO_LEASE', 'task refused: no open lease with this id (open one first)')
    const ok = checkTaskUnderLease({ task, lease, sender, now: this.now() })
    if (!ok.ok) throw new ExecutorError('TASK_REFUSED', `task refused: ${ok.reason}`)
    let code = task.code ?? new Uint8Array()
    const hash = task.codeHash ?? new Uint8Array()
    if (code.length === 0) {
      const cached = this.code.get(toHex(hash))
      if (cached === undefined) throw new ExecutorError('CODE_MISSING', 'task refused: it names a module this provider does not hold; send the code with the task')
      code = cached
    } else if (hash.length > 0) {
      if (!bytesEqual(sha256(code), hash)) throw new ExecutorError('CODE_HASH_MISMATCH', 'task refused: the code does not match its hash')
      this.code.set(toHex(hash), code)
      if (this.code.size > MAX_CODE_CACHE) this.code.delete(this.code.keys().next().value as string)
    }
    const out = await this.peer.runTask({ ...task, code }, { signal: opts.signal, consumer: lease.holder ?? undefined })
    return { ...out.result, receipt: out.receipt }
  }
}

export function encodeOfferForLog (o: dbc.task.v1.IOffer): string {
  return o.refusal != null && o.refusal !== '' ? `refused: ${o.refusal}` : `${o.slots ?? 0} slots`
}
