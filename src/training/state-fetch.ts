// A worker asking a donor for the job's state (StateRequest -> StateResponse): one request in flight
// at a time, asked again after 5 s and then twice as long each time (a request sent while the
// connection to the donor was still opening can be lost on the way; the answer to a repeated one is
// the same), ended by the answer, its timeout or an abort. Checking the state is the caller's.
import { dbc } from '../wire/gen/wire.js'
import { TrainingError } from './worker-types.js'
import type { TrainingMessageInput } from './transport.js'

/** A state request not answered in this long is sent again (then after twice as long, ...). */
export const STATE_RESEND_MS = 5000

type Waiter = (from: string, msg: dbc.training.v1.StateResponse) => void

export class StateFetch {
  private waiter: Waiter | undefined

  constructor (private readonly jobId: string, private readonly send: (to: string, msg: TrainingMessageInput) => void) {}

  /** A StateResponse of this job arrived from `from`: the fetch in flight takes it if it is its answer. */
  deliver (from: string, msg: dbc.training.v1.StateResponse): void { this.waiter?.(from, msg) }

  /**
   * Asks `donor` for the state (of round `minRound` or later) until it answers, `timeoutMs` passes or
   * a signal aborts: a stopped worker (or a cancelled load) asks no more, its resends would fetch
   * whole states nobody reads.
   */
  async fetch (donor: string, minRound: number | undefined, timeoutMs: number, signals: AbortSignal[]): Promise<dbc.training.v1.StateResponse> {
    return await new Promise<dbc.training.v1.StateResponse>((resolve, reject) => {
      let resend: ReturnType<typeof setTimeout> | undefined
      // settles the fetch once: the waiter, both timers and the abort listeners go with it
      const end = (err: unknown, m?: dbc.training.v1.StateResponse): void => {
        if (this.waiter === waiter) this.waiter = undefined
        clearTimeout(timer); clearTimeout(resend)
        for (const s of signals) s.removeEventListener('abort', onAbort)
        if (m !== undefined) resolve(m)
        else reject(err)
      }
      const timer = setTimeout(() => {
        end(new TrainingError('STATE_TIMEOUT', `no state from ${donor} within ${Math.round(timeoutMs)} ms`, { hint: 'pick another member of the job as donor' }))
      }, timeoutMs)
      const onAbort = (): void => { end(signals.find(s => s.aborted)?.reason) }
      const ask = (waitMs: number): void => {
        this.send(donor, { stateRequest: { jobId: this.jobId } })
        if (waitMs < timeoutMs) resend = setTimeout(() => { if (this.waiter === waiter) ask(waitMs * 2) }, waitMs)
      }
      const waiter: Waiter = (from, m) => {
        // an answer to an earlier request of ours (a resend, an earlier load) is not this one's
        if (from !== donor || (minRound !== undefined && m.round < minRound)) return
        end(undefined, m)
      }
      this.waiter = waiter
      if (signals.some(s => s.aborted)) { onAbort(); return }
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true })
      ask(STATE_RESEND_MS)
    })
  }
}
