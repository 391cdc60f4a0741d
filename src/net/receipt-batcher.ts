// One receipt signature for the results a lease stream writes at once (SignedReceipt.batch): a
// provider signed each tiny task's receipt alone (~50 us of Ed25519 on its event loop) and the
// holder verified each (~120 us); results that leave in one write now share one signature, which
// the holder checks once for them all. Only for a holder that says it checks batches
// (Task.batch_receipts: older submitters get receipts signed alone, as before).
import { dbc } from '../wire/gen/wire.js'
import { RECEIPT_BATCH_MAX } from '../core/settlement/receipt.js'
import { LEASE_WRITE_LINGER_MS } from './lease-writer.js'

type Result = dbc.task.v1.ITaskResult

/** A result whose receipt the provider left unsigned for a batch (runTask's unsignedReceipt). */
export function awaitsBatchSignature (r: Result): boolean {
  const rc = r.receipt
  return rc != null && rc.receipt != null && rc.receipt.length > 0 && (rc.signature == null || rc.signature.length === 0)
}

export class ReceiptBatcher {
  private pending: Array<{ result: Result, resolve: (r: Result) => void, reject: (err: Error) => void }> = []
  private timer: ReturnType<typeof setTimeout> | undefined
  private immediate = false
  /** Signatures made and receipts they covered (tests, benches). */
  signatures = 0
  receipts = 0

  constructor (private readonly sign: (receipts: readonly Uint8Array[]) => dbc.receipt.v1.ISignedReceipt[], private readonly lingerMs = LEASE_WRITE_LINGER_MS) {}

  /**
   * Resolves with `result`, its receipt signed with the others queued by then: at the next turn,
   * or (`linger`: more of the lease's tasks run) within lingerMs, as the lease writer batches
   * their writes; at once when RECEIPT_BATCH_MAX wait.
   */
  async signed (result: Result, linger: boolean): Promise<Result> {
    const done = new Promise<Result>((resolve, reject) => { this.pending.push({ result, resolve, reject }) })
    if (this.pending.length >= RECEIPT_BATCH_MAX) this.flush()
    else if (!linger && !this.immediate) { this.immediate = true; setImmediate(this.flush) } else if (linger) this.timer ??= setTimeout(this.flush, this.lingerMs)
    return await done
  }

  /**
   * Resolves with `results` (a TaskBundle's, at most RECEIPT_BATCH_MAX), their receipts signed
   * together by one signature: what waits already is signed first when the group would not fit
   * beside it, and the group is signed at once.
   */
  async signedGroup (results: readonly Result[]): Promise<Result[]> {
    if (this.pending.length + results.length > RECEIPT_BATCH_MAX) this.flush()
    const done = results.map(async result => await new Promise<Result>((resolve, reject) => { this.pending.push({ result, resolve, reject }) }))
    this.flush()
    return await Promise.all(done)
  }

  readonly flush = (): void => {
    this.immediate = false
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
    const batch = this.pending
    this.pending = []
    if (batch.length === 0) return
    let signed: dbc.receipt.v1.ISignedReceipt[]
    try {
      signed = this.sign(batch.map(b => b.result.receipt?.receipt as Uint8Array))
    } catch (err) {
      for (const b of batch) b.reject(err as Error)
      return
    }
    this.signatures++
    this.receipts += batch.length
    batch.forEach((b, i) => { b.resolve({ ...b.result, receipt: signed[i] }) })
  }

  /** Stops its timers; what still waits is signed now (the stream's end: those results are dropped by their tasks). */
  close (): void { this.flush() }
}
