// What a provider's operator reads in `dbc node logs` about the training it serves for others, as
// each grid task has its line: the jobs it joined, refused (with the code) and left (rounds done).
// Refusals come from strangers' invitations: one line per coordinator and code per window.
import { RepeatLimiter } from '../net/guard/log-limit.js'

export type MembershipEvent =
  | { kind: 'joined', jobId: string, coordinator: string, trainer: string, fromRound: number }
  | { kind: 'refused', jobId: string, coordinator: string, code: string, reason: string }
  | { kind: 'left', jobId: string, coordinator: string, rounds: number, refusedRounds: number }

export interface MemberLogSink { info: (obj: Record<string, unknown>, msg: string) => void }

/** Refusal lines of one coordinator and code: at most one per this window (ms). */
export const MEMBER_REFUSAL_LOG_WINDOW_MS = 60_000

export function memberLog (log: MemberLogSink, now: () => number, limiter = new RepeatLimiter(MEMBER_REFUSAL_LOG_WINDOW_MS)): (e: MembershipEvent) => void {
  return (e) => {
    const job = e.jobId.slice(0, 64)
    if (e.kind === 'joined') {
      log.info({ job, coordinator: e.coordinator, trainer: e.trainer, ...(e.fromRound > 0 ? { fromRound: e.fromRound } : {}) }, `training: joined job ${job} of ${e.coordinator} (${e.trainer} trainer${e.fromRound > 0 ? `, from round ${e.fromRound + 1}` : ''})`)
    } else if (e.kind === 'left') {
      log.info({ job, coordinator: e.coordinator, rounds: e.rounds, refusedRounds: e.refusedRounds }, `training: left job ${job} of ${e.coordinator} after ${e.rounds} round(s)${e.refusedRounds > 0 ? `, ${e.refusedRounds} sat out (payment)` : ''}; \`dbc earnings\` shows what it paid`)
    } else {
      const code = e.code === '' ? 'REFUSED' : e.code
      const { write, suppressed } = limiter.check(now(), `${e.coordinator}:${code}`)
      if (!write) return
      log.info({ job, coordinator: e.coordinator, code, reason: e.reason.slice(0, 300), ...(suppressed > 0 ? { suppressed } : {}) }, `training: refused job ${job} of ${e.coordinator}: ${e.reason.slice(0, 300)}${suppressed > 0 ? ` (and ${suppressed} more refusals of this peer with ${code} since the last line)` : ''}`)
    }
  }
}
