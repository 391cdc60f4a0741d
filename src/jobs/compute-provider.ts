// Adapts a ComputePeer (src/compute) to the runner's provider interface: the peer answers
// lease requests with signed offers and runs tasks; this adds the lease-holder checks.
import { createHash } from 'node:crypto'
import type { dbc } from '../wire/gen/wire.js'
import type { ComputePeer } from '../compute/index.js'
import { toHex } from '../core/identity/index.js'
import { checkLease, checkTaskUnderLease } from '../core/scheduler/ownership.js'
import { nodeVerifyByPeerId } from './signing.js'
import type { LocalProvider } from './local-transport.js'

export class ComputePeerProvider implements LocalProvider {
  readonly id: string
  private readonly leases = new Map<string, dbc.task.v1.ILease>()
  private readonly code = new Map<string, Uint8Array>()

  constructor (readonly peer: ComputePeer, id?: string) {
    this.id = id ?? toHex(peer.peerId).slice(-16)
  }

  offer (req: dbc.task.v1.ILeaseRequest): dbc.task.v1.IOffer {
    return this.peer.offer(req)
  }

  openLease (lease: dbc.task.v1.ILease, sender: Uint8Array): void {
    const ok = checkLease({ lease, sender, self: this.peer.peerId, now: Date.now(), verify: nodeVerifyByPeerId })
    if (!ok.ok) throw new Error(`lease refused: ${ok.reason}`)
    this.leases.set(toHex(lease.leaseId ?? new Uint8Array()), lease)
  }

  closeLease (leaseId: Uint8Array): void { this.leases.delete(toHex(leaseId)) }

  async runTask (task: dbc.task.v1.ITask, sender: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<dbc.task.v1.ITaskResult> {
    const base = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt }
    const lease = this.leases.get(toHex(task.leaseId ?? new Uint8Array()))
    const admitted = lease === undefined ? { ok: false as const, reason: 'no such lease here' } : checkTaskUnderLease({ task, lease, sender, now: Date.now(), verify: nodeVerifyByPeerId })
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
      return result
    } catch (err) {
      // Refused before running (no slot, limits): the runner retries it elsewhere.
      return { ...base, ok: false, error: `${(err as { code?: string }).code ?? 'REFUSED'}: ${(err as Error).message}` }
    }
  }
}
