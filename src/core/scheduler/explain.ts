// Why a task runs where it runs, or why it does not run: read back from a Placement's
// typed arrays (the decisions are recorded as they are made, not reconstructed).
import type { OfferRejection, Placement, UnplacedReason } from './placement.js'

export interface CopyExplanation {
  copy: number
  provider: string
  offerId: string
  predictedRunMs: number
  predictedTransferMs: number
  predictedFinishMs: number
  price: number
  pricePerHour: number
  /** Reputation risk, times the declared-GPU factor when gpus is 'declared'. */
  reputationRiskFactor: number
  /** For a GPU task: whether the provider probed the GPUs it offers or only declared them. */
  gpus?: 'probed' | 'declared'
  score: number
  /** Score of the best other offer when this one was chosen (lower is better). */
  runnerUpScore?: number
  why: string
}

export interface TaskPlacementExplanation {
  index: number
  placed: boolean
  copies: CopyExplanation[]
  unplacedReason?: UnplacedReason
  why: string
}

export interface PlacementSummary {
  tasks: number
  placedTasks: number
  offers: number
  usableOffers: number
  offersUsed: number
  rejectedOffers: Partial<Record<OfferRejection, number>>
  unplaced: Partial<Record<UnplacedReason, number>>
  predictedCost: number
  predictedMakespanMs: number
  /** Across the job's rounds: offer requests sent, how many got no offer, a few such providers and why (src/jobs/offer-silence.ts). */
  candidates?: { asked: number, noAnswer: number, examples: Array<{ provider: string, times: number, reason: string }> }
}

const UNPLACED_TEXT: Record<UnplacedReason, string> = {
  'no-candidates': 'no provider answered the lease request (no candidates found)',
  'all-refused': 'every provider asked refused or its offer expired',
  'over-price': 'every offer costs more per hour than budget.maxPricePerHour',
  'too-far': 'every offer is farther than location.maxDistanceKm',
  'over-budget': 'budget.total does not cover it: what is left of it after the copies placed (or spent) before is less than this task\'s predicted price',
  deadline: 'no offer can finish it before the deadline',
  'not-enough-providers': 'fewer distinct providers than verification.redundancy copies',
  avoided: 'every provider left is avoided after repeated failures or wrong answers'
}

export function describeUnplaced (reason: UnplacedReason): string {
  return UNPLACED_TEXT[reason]
}

export function explainTask (p: Placement, index: number): TaskPlacementExplanation {
  const copies = Math.max(1, p.request.copies)
  const reason = p.unplaced.get(index)
  if (reason !== undefined) return { index, placed: false, copies: [], unplacedReason: reason, why: `not placed: ${UNPLACED_TEXT[reason]}` }
  const out: CopyExplanation[] = []
  for (let c = 0; c < copies; c++) {
    const copy = index * copies + c
    const i = p.copyOffer[copy]
    if (i < 0) continue
    const o = p.offers[i]
    const pr = p.predictions[i]
    const runnerUp = p.copyRunnerUpScore[copy]
    const score = p.copyScore[copy]
    const parts = [`lowest cost ${score.toFixed(6)}`]
    if (!Number.isNaN(runnerUp)) parts.push(`next best ${runnerUp.toFixed(6)}`)
    parts.push(`runs ~${pr.runMs.toFixed(0)} ms (perf ${o.perfScore.toFixed(2)}), transfer ~${pr.transferMs.toFixed(0)} ms, ${pr.pricePerHour.toFixed(4)}/h, risk x${pr.riskFactor.toFixed(2)}`)
    const gpuTask = p.request.gpuCount > 0
    if (gpuTask) parts.push(pr.gpusDeclared ? 'GPUs declared, not probed (ranked below probed ones)' : 'GPUs probed')
    if (c > 0) parts.push('distinct provider for verification')
    out.push({
      copy: c,
      provider: o.provider,
      offerId: o.offerId,
      predictedRunMs: pr.runMs,
      predictedTransferMs: pr.transferMs,
      predictedFinishMs: p.copyFinishMs[copy],
      price: pr.price,
      pricePerHour: pr.pricePerHour,
      reputationRiskFactor: pr.riskFactor,
      ...(gpuTask ? { gpus: pr.gpusDeclared ? 'declared' as const : 'probed' as const } : {}),
      score,
      runnerUpScore: Number.isNaN(runnerUp) ? undefined : runnerUp,
      why: parts.join('; ')
    })
  }
  return { index, placed: true, copies: out, why: out.map(c => `${c.provider}: ${c.why}`).join(' | ') }
}

export function summarizePlacement (p: Placement): PlacementSummary {
  const rejectedOffers: Partial<Record<OfferRejection, number>> = {}
  let usable = 0; let used = 0
  for (let i = 0; i < p.offers.length; i++) {
    const r = p.rejections[i]
    if (r === undefined) usable++
    else rejectedOffers[r] = (rejectedOffers[r] ?? 0) + 1
    if (p.tasksPerOffer[i] > 0) used++
  }
  const unplaced: Partial<Record<UnplacedReason, number>> = {}
  for (const r of p.unplaced.values()) unplaced[r] = (unplaced[r] ?? 0) + 1
  return {
    tasks: p.request.taskCount,
    placedTasks: p.request.taskCount - p.unplaced.size,
    offers: p.offers.length,
    usableOffers: usable,
    offersUsed: used,
    rejectedOffers,
    unplaced,
    predictedCost: p.totalPrice,
    predictedMakespanMs: p.makespanMs
  }
}
