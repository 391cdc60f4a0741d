// Candidates asked for offers that gave none (user16 #5): a NATed provider whose requests all failed
// was visible only with DEBUG=dbc:task, while explain said "2 of 2 offers usable". Tallied across
// the job's rounds for `dbc job explain`: counts, and a few providers with their latest reason
// (bounded: a job asks up to 64 candidates a round, for as long as it runs).
import type { OfferRoundReport } from '../core/scheduler/ports.js'

/** Providers kept by name; the others are counted only. */
export const SILENT_EXAMPLES = 4

export interface CandidateAnswers {
  /** Offer requests sent, across the job's rounds. */
  asked: number
  /** Of those, requests that got no offer: no answer in time, a broken stream, or an error frame instead of one. */
  noAnswer: number
  /** The first few providers that did not answer: how often, and the latest reason. */
  examples: Array<{ provider: string, times: number, reason: string }>
}

export class OfferSilence {
  private asked = 0
  private noAnswer = 0
  private readonly examples = new Map<string, { times: number, reason: string }>()

  record (r: OfferRoundReport): void {
    this.asked += r.asked
    this.noAnswer += r.silent.length
    for (const s of r.silent) {
      const e = this.examples.get(s.provider)
      if (e !== undefined) { e.times++; e.reason = s.reason; continue }
      if (this.examples.size < SILENT_EXAMPLES) this.examples.set(s.provider, { times: 1, reason: s.reason })
    }
  }

  /** Undefined until a round reported (a transport that does not report: an in-process one). */
  summary (): CandidateAnswers | undefined {
    if (this.asked === 0) return undefined
    return { asked: this.asked, noAnswer: this.noAnswer, examples: [...this.examples].map(([provider, e]) => ({ provider, ...e })) }
  }
}
