// A tiny virtual-time driver for JobMachine tests: providers with a speed, optional lies,
// failures and death; results arrive after a delay; heartbeats every 100 ms while alive.
import { JobMachine, ReputationBook, type JobPolicy, type JobEvent } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

export interface FakeProvider {
  id: string, taskMs: number, slots?: number, liar?: boolean, failEvery?: number, diesAt?: number, stallEvery?: number
  /** Lies with the same wrong value as every other colluder. */
  colluder?: boolean
  /** Honest for its first n results, then lies (a provider that builds a record first). */
  liesAfter?: number
}
export const truth = (i: number): string => `h${i}`

export function simulate (policy: JobPolicy, providers: FakeProvider[], opts: { seed?: number, reputation?: ReputationBook, untilMs?: number } = {}) {
  const rng = createRng(opts.seed ?? 1)
  const rep = opts.reputation ?? new ReputationBook()
  const m = new JobMachine(policy, rep, rng)
  const events: JobEvent[] = []
  const pending: Array<{ at: number, fn: () => void }> = []
  let now = 0
  let runs = 0
  const answers = new Map<string, number>()
  const dead = (p: FakeProvider): boolean => p.diesAt !== undefined && now >= p.diesAt
  for (const p of providers) m.handleLease(now, { leaseId: 'L' + p.id, provider: p.id, slots: p.slots ?? 2 })
  const drain = (): void => {
    for (const c of m.pollCommands()) {
      if (c.type !== 'run') continue
      runs++
      const p = providers.find(x => x.id === c.provider)!
      const stall = p.stallEvery !== undefined && runs % p.stallEvery === 0
      const at = now + p.taskMs * (stall ? 50 : 1)
      pending.push({ at, fn: () => {
        if (p.diesAt !== undefined && at >= p.diesAt) return // never answers
        const fail = p.failEvery !== undefined && runs % p.failEvery === 0
        const answered = (answers.get(p.id) ?? 0) + 1
        answers.set(p.id, answered)
        const lies = p.liar === true || (p.liesAfter !== undefined && answered > p.liesAfter)
        const hash = p.colluder === true ? `bad-${c.index}` : lies ? `bad-${p.id}-${c.index}` : truth(c.index)
        m.handleResult(at, { index: c.index, attempt: c.attempt, ok: !fail, hash, error: fail ? 'boom' : undefined })
      } })
    }
    events.push(...m.pollEvents())
  }
  drain()
  let nextBeat = 100
  const limit = opts.untilMs ?? 1e7
  while (!m.isFinished && now < limit) {
    pending.sort((a, b) => a.at - b.at)
    const t = Math.min(pending[0]?.at ?? Infinity, m.nextTimeout() ?? Infinity, nextBeat)
    if (t === Infinity) break
    now = t
    if (now >= nextBeat) { for (const p of providers) if (!dead(p)) m.handleHeartbeat(now, 'L' + p.id); nextBeat += 100 }
    while (pending.length > 0 && pending[0].at <= now) pending.shift()!.fn()
    m.handleTimeout(now)
    drain()
  }
  return { m, events, now, rep }
}
