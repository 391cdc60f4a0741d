// A lease's task slots at the payment gate (its offer's `slots`): a task, or a TaskBundle, takes
// one before it is admitted and gives it back when it ends; up to LEASE_SLOT_QUEUE more wait for
// one in turn (tasks read ahead on the lease stream), so the queue per lease stays bounded. Only
// the LeasePayment's `inflight` and `waiting` are touched (PaymentGate.slotFree, bundleDone).
import { LEASE_SLOT_QUEUE, type LeasePayment } from './payment-gate-types.js'

/** A slot of the lease is free again: the next task waiting for one (takeSlot) takes it. */
export function releaseSlot (lp: LeasePayment): void {
  const next = lp.waiting?.shift()
  if (next !== undefined) next() // handed over: the count stays, a task arriving meanwhile can not take it
  else lp.inflight = Math.max(0, lp.inflight - 1)
}

/**
 * Takes a free slot of the lease, waiting for one in turn; false, with none, when
 * LEASE_SLOT_QUEUE tasks wait already or the signal fired (the caller refuses LEASE_SLOTS_BUSY).
 */
export async function takeSlot (lp: LeasePayment, signal?: AbortSignal): Promise<boolean> {
  if (lp.inflight < lp.slots) { lp.inflight++; return true }
  const q = (lp.waiting ??= [])
  if (q.length >= LEASE_SLOT_QUEUE || signal?.aborted === true) return false
  let handed = false
  let wake!: () => void
  const woken = new Promise<void>(resolve => { wake = resolve })
  const take = (): void => { handed = true; wake() }
  const onAbort = (): void => { const i = q.indexOf(take); if (i >= 0) q.splice(i, 1); wake() }
  q.push(take)
  signal?.addEventListener('abort', onAbort, { once: true })
  await woken
  signal?.removeEventListener('abort', onAbort)
  // handed the slot as its cancel arrived: the slot goes on to the next waiter, not to a cancelled task
  if (handed && aborted(signal)) { releaseSlot(lp); return false }
  return handed
}

/** Whether the signal fired by now (a function: TypeScript would keep a check made before an await). */
function aborted (signal: AbortSignal | undefined): boolean { return signal?.aborted === true }
