// Placement: which offer runs each copy of each task. The cost model predicts, per offer,
// the run time on that hardware (expected time / perf score), the transfer time (predicted
// RTT + bytes / bandwidth), the price of one task there, and a risk factor from reputation;
// the queue on an offer's slots makes later tasks finish later, so work spreads out. Transfer is
// counted once per offer, not per copy: placement picks which offers to lease, and leased slots
// then pull copies from one queue at their own pace, so charging every copy the round trip makes
// short jobs lease far providers that then take far more than their planned share (measured on
// the multi-host test: per-copy round trip 52 -> 126 ms, makespan unchanged).
// Greedy over a binary heap keyed by the cost of the *next* task on each offer:
// O((tasks x copies) log offers), 10,000 tasks over 1,000 offers in a few milliseconds.
// Everything is recorded in typed arrays so `explainTask` can say why, after the fact.

export interface OfferView {
  offerId: string
  provider: string
  /** Concurrent task slots offered. */
  slots: number
  priceGpuHour: number
  priceCpuHour: number
  /** Benchmark score; 1 = the reference machine that `expectedTaskMs` is measured on. */
  perfScore: number
  expiresAt: number
  /** Non-empty: the provider said no, and why. */
  refusal?: string
  /** Predicted round-trip time to the provider (Vivaldi), ms. */
  rttMs?: number
  bandwidthBytesPerSec?: number
  /** 0..1 (0.5 = unknown). */
  reputation?: number
  /** Distance from the job's location preference, km. */
  distanceKm?: number
  /** The provider probed the GPUs it offers (nvidia-smi); absent or false: only declared, so unverified. */
  gpusProbed?: boolean
  /** Tasks of one TaskBundle the provider runs in a slot (offerBundleOf: 1 = none, older providers). */
  bundleMax?: number
}

export interface PlacementRequest {
  now: number
  taskCount: number
  /** Copies of each task on distinct providers (the verification redundancy). */
  copies: number
  expectedTaskMs: number
  inputBytes: number
  outputBytes?: number
  gpuCount: number
  cores: number
  maxPricePerHour?: number
  budgetTotal?: number
  deadlineAt?: number
  maxDistanceKm?: number
  /** What an hour of waiting is worth, in price units; trades speed against price. */
  timeValuePerHour?: number
  /** How much an unknown or bad reputation inflates cost (expected rework). */
  riskWeight?: number
  /** Providers not to use (failed repeatedly, caught lying). */
  avoid?: ReadonlySet<string>
  /** Providers to use only when no other offer fits (they refused a lease as busy): cost x PENALISED_FACTOR. */
  penalise?: ReadonlySet<string>
  /** Copies already placed elsewhere count against the budget. */
  alreadySpent?: number
  /** Cost factor of an offer whose GPUs are only declared, for a GPU task (default DECLARED_GPU_FACTOR). */
  declaredGpuFactor?: number
  /** A provider's own time per copy, one copy at a time whatever its slots (default COPY_OVERHEAD_MS). */
  copyOverheadMs?: number
}

/**
 * A declared-only GPU ranks below a probed one of the same model: nothing checked it exists or
 * performs as its table score says, so its cost counts half again (like an unknown reputation).
 */
export const DECLARED_GPU_FACTOR = 1.5
/** Cost factor of a penalised provider's offer: above any real difference, so it comes last. */
export const PENALISED_FACTOR = 1e6
/**
 * Run times a copy that waits for a slot (behind other copies on the same offer) pays on top in
 * its score (its predicted finish is unchanged). Run times come from the providers' own benchmark
 * scores, which differ up to 2.6x between identical machines started together on a loaded host
 * (13 pairs measured: 90/188, 68/176, 116/212...): so a copy queues on a busy slot only when that
 * provider is predicted over 3x faster than an idle one, not merely faster (both tiles of a
 * two-tile job once went to one of two identical providers). A constant, once per queued copy:
 * deep queues keep their proportions, and a near provider's lead in round trip barely moves.
 */
export const QUEUE_WAIT_RUNS = 1

/**
 * What each copy costs a provider besides its run, one copy after another (its event loop reads
 * the task, checks the lease and payment, signs the receipt; its slots run in parallel, this does
 * not): the providers' CPU per copy in `npm run bench -- grid`'s end-to-end job (3.64 CPU ms per
 * task over 4 provider daemons at 1.10 copies per task: 3.3 ms, the 1 ms tiny task included).
 * Only tiny tasks notice it: it makes a 1,000-task job of 1 ms tasks spread over the offers
 * (without it, 2 of 4 leased: a queue of 1 ms copies looked cheaper than a far offer's round
 * trip); a copy of seconds or more is not moved by it.
 */
export const COPY_OVERHEAD_MS = 3

export type OfferRejection = 'refused' | 'expired' | 'over-price' | 'too-far' | 'avoided' | 'no-slots' | 'deadline'
export type UnplacedReason = 'no-candidates' | 'all-refused' | 'over-price' | 'too-far' | 'over-budget' | 'deadline' | 'not-enough-providers' | 'avoided'

export interface OfferPrediction {
  runMs: number
  transferMs: number
  /** Price of one task copy on this offer. */
  price: number
  pricePerHour: number
  /** Reputation risk, times declaredGpuFactor for a GPU task on declared-only GPUs. */
  riskFactor: number
  /** A GPU task on GPUs the provider only declared (not probed). */
  gpusDeclared: boolean
}

export interface Placement {
  request: PlacementRequest
  offers: readonly OfferView[]
  predictions: OfferPrediction[]
  /** Per offer: undefined when usable, else why not. */
  rejections: Array<OfferRejection | undefined>
  /** Per copy (task * copies + c): offer index, or -1 when unplaced. */
  copyOffer: Int32Array
  /** Per copy: predicted finish, ms after `now`. */
  copyFinishMs: Float64Array
  copyScore: Float64Array
  /** Per copy: score of the best alternative at decision time (NaN if none). */
  copyRunnerUpScore: Float64Array
  /** Per task: undefined when all copies placed, else why not. */
  unplaced: Map<number, UnplacedReason>
  tasksPerOffer: Int32Array
  totalPrice: number
  makespanMs: number
  elapsedOps: number
}

const DEFAULT_BANDWIDTH = 12_500_000 // 100 Mbit/s
const DEFAULT_RTT = 50

/**
 * When the k-th copy (from 0) placed on an offer ends, ms from now: after its wave of the offer's
 * slots ran, and not before the provider took the k copies ahead of it one at a time.
 */
export function nthCopyFinishMs (p: OfferPrediction, slots: number, k: number, overheadMs: number): number {
  return p.transferMs + Math.max((Math.floor(k / slots) + 1) * p.runMs, (k + 1) * overheadMs)
}

/** Predicted cost of one task copy on an offer (exported for the simulator and explain). */
export function predictOffer (req: PlacementRequest, o: OfferView): OfferPrediction {
  const runMs = req.expectedTaskMs / Math.max(1e-6, o.perfScore)
  const bytes = req.inputBytes + (req.outputBytes ?? 0)
  const transferMs = (o.rttMs ?? DEFAULT_RTT) + (bytes * 1000) / (o.bandwidthBytesPerSec ?? DEFAULT_BANDWIDTH)
  const pricePerHour = req.gpuCount * o.priceGpuHour + req.cores * o.priceCpuHour
  const price = (pricePerHour * runMs) / 3_600_000
  const rep = Math.min(1, Math.max(0, o.reputation ?? 0.5))
  const gpusDeclared = req.gpuCount > 0 && o.gpusProbed !== true
  const riskFactor = (1 + (1 - rep) * (req.riskWeight ?? 0.5)) * (gpusDeclared ? (req.declaredGpuFactor ?? DECLARED_GPU_FACTOR) : 1)
  return { runMs, transferMs, price, pricePerHour, riskFactor, gpusDeclared }
}

function rejectOffer (req: PlacementRequest, o: OfferView, p: OfferPrediction): OfferRejection | undefined {
  if (o.refusal !== undefined && o.refusal !== '') return 'refused'
  if (o.expiresAt <= req.now) return 'expired'
  if (o.slots <= 0) return 'no-slots'
  if (req.avoid?.has(o.provider) === true) return 'avoided'
  if (req.maxPricePerHour !== undefined && p.pricePerHour > req.maxPricePerHour) return 'over-price'
  if (req.maxDistanceKm !== undefined && o.distanceKm !== undefined && o.distanceKm > req.maxDistanceKm) return 'too-far'
  if (req.deadlineAt !== undefined && req.now + p.transferMs + p.runMs > req.deadlineAt) return 'deadline'
  return undefined
}

/** Places every copy of every task; never throws, records why for what it could not place. */
export function placeTasks (req: PlacementRequest, offers: readonly OfferView[]): Placement {
  const nOffers = offers.length
  const copies = Math.max(1, req.copies)
  const nCopies = req.taskCount * copies
  const predictions = new Array<OfferPrediction>(nOffers)
  const rejections = new Array<OfferRejection | undefined>(nOffers)
  const providerIndex = new Map<string, number>()
  const offerProvider = new Int32Array(nOffers)
  const timeValue = req.timeValuePerHour ?? (req.maxPricePerHour ?? 1)
  const deadlineMs = req.deadlineAt === undefined ? Infinity : req.deadlineAt - req.now
  let budgetLeft = req.budgetTotal === undefined ? Infinity : req.budgetTotal - (req.alreadySpent ?? 0)

  // The heap holds usable offers keyed by the score of their next task.
  const heapKey = new Float64Array(nOffers)
  const heapOffer = new Int32Array(nOffers)
  let heapSize = 0
  const assigned = new Int32Array(nOffers)
  const costScale = new Float64Array(nOffers)
  let minPrice = Infinity
  const usableProviders = new Set<number>()

  const overheadMs = Math.max(0, req.copyOverheadMs ?? COPY_OVERHEAD_MS)
  const finishOf = (i: number, k: number): number => nthCopyFinishMs(predictions[i], offers[i].slots, k, overheadMs)
  // the score of the k-th copy on offer i: its finish, plus QUEUE_WAIT_RUNS run times when it waits for a slot
  const scoreOf = (i: number, k: number): number => {
    const p = predictions[i]
    const ranked = finishOf(i, k) + (k >= offers[i].slots ? QUEUE_WAIT_RUNS * p.runMs : 0)
    return (p.price + (timeValue * ranked) / 3_600_000) * costScale[i]
  }
  const push = (i: number, key: number): void => {
    let j = heapSize++
    while (j > 0) {
      const parent = (j - 1) >> 1
      if (heapKey[parent] <= key) break
      heapKey[j] = heapKey[parent]; heapOffer[j] = heapOffer[parent]; j = parent
    }
    heapKey[j] = key; heapOffer[j] = i
  }
  const pop = (): number => {
    const top = heapOffer[0]
    const lastKey = heapKey[--heapSize]; const lastOffer = heapOffer[heapSize]
    let j = 0
    for (;;) {
      let c = 2 * j + 1
      if (c >= heapSize) break
      if (c + 1 < heapSize && heapKey[c + 1] < heapKey[c]) c++
      if (heapKey[c] >= lastKey) break
      heapKey[j] = heapKey[c]; heapOffer[j] = heapOffer[c]; j = c
    }
    heapKey[j] = lastKey; heapOffer[j] = lastOffer
    return top
  }

  for (let i = 0; i < nOffers; i++) {
    const o = offers[i]
    let pi = providerIndex.get(o.provider)
    if (pi === undefined) { pi = providerIndex.size; providerIndex.set(o.provider, pi) }
    offerProvider[i] = pi
    const p = predictOffer(req, o)
    predictions[i] = p
    costScale[i] = p.riskFactor * (req.penalise?.has(o.provider) === true ? PENALISED_FACTOR : 1)
    const why = rejectOffer(req, o, p)
    rejections[i] = why
    if (why === undefined) {
      push(i, scoreOf(i, 0))
      if (p.price < minPrice) minPrice = p.price
      usableProviders.add(pi)
    }
  }

  const copyOffer = new Int32Array(nCopies).fill(-1)
  const copyFinishMs = new Float64Array(nCopies)
  const copyScore = new Float64Array(nCopies)
  const copyRunnerUpScore = new Float64Array(nCopies).fill(NaN)
  const unplaced = new Map<number, UnplacedReason>()
  let totalPrice = 0
  let makespan = 0
  let ops = 0
  let deadlineHit = false
  const globalReason = (): UnplacedReason => {
    if (nOffers === 0) return 'no-candidates'
    if (deadlineHit) return 'deadline'
    const counts = new Map<OfferRejection, number>()
    for (const r of rejections) if (r !== undefined) counts.set(r, (counts.get(r) ?? 0) + 1)
    if (usableProviders.size > 0 && usableProviders.size < copies) return 'not-enough-providers'
    let best: OfferRejection = 'refused'; let bestN = -1
    for (const [r, n] of counts) if (n > bestN) { best = r; bestN = n }
    if (best === 'refused' || best === 'expired' || best === 'no-slots') return 'all-refused'
    return best
  }
  if (usableProviders.size > 0 && usableProviders.size < copies) {
    for (let t = 0; t < req.taskCount; t++) unplaced.set(t, 'not-enough-providers')
    return { request: req, offers, predictions, rejections, copyOffer, copyFinishMs, copyScore, copyRunnerUpScore, unplaced, tasksPerOffer: assigned, totalPrice, makespanMs: 0, elapsedOps: 0 }
  }

  const stash = new Int32Array(nOffers)
  const taskProviders = new Int32Array(copies)
  for (let t = 0; t < req.taskCount; t++) {
    if (heapSize === 0) { unplaced.set(t, globalReason()); continue }
    if (budgetLeft < minPrice * copies) { unplaced.set(t, 'over-budget'); continue }
    let stashed = 0
    let placedCopies = 0
    let blockedByBudget = false
    const taskPrice0 = totalPrice
    for (let c = 0; c < copies; c++) {
      let chosen = -1
      while (heapSize > 0) {
        ops++
        const i = pop()
        const finish = finishOf(i, assigned[i])
        if (finish > deadlineMs) { deadlineHit = true; continue } // full up to the deadline
        let dup = false
        for (let q = 0; q < placedCopies; q++) if (taskProviders[q] === offerProvider[i]) { dup = true; break }
        if (!dup && predictions[i].price > budgetLeft) blockedByBudget = true
        if (dup || predictions[i].price > budgetLeft) { stash[stashed++] = i; continue }
        chosen = i
        const copy = t * copies + c
        copyOffer[copy] = i
        copyFinishMs[copy] = finish
        copyScore[copy] = scoreOf(i, assigned[i])
        copyRunnerUpScore[copy] = heapSize > 0 ? heapKey[0] : NaN
        if (finish > makespan) makespan = finish
        break
      }
      if (chosen < 0) break
      taskProviders[placedCopies++] = offerProvider[chosen]
      assigned[chosen]++
      budgetLeft -= predictions[chosen].price
      totalPrice += predictions[chosen].price
      push(chosen, scoreOf(chosen, assigned[chosen]))
    }
    for (let s = 0; s < stashed; s++) { const i = stash[s]; push(i, scoreOf(i, assigned[i])) }
    if (placedCopies < copies) {
      // A task runs with all its copies or not at all: give back what this task took.
      for (let c = 0; c < placedCopies; c++) {
        const copy = t * copies + c
        const i = copyOffer[copy]
        assigned[i]--
        budgetLeft += predictions[i].price
        copyOffer[copy] = -1
      }
      totalPrice = taskPrice0
      const reason: UnplacedReason = blockedByBudget ? 'over-budget' : deadlineHit ? 'deadline' : stashed > 0 ? 'not-enough-providers' : globalReason()
      unplaced.set(t, reason)
      // Rebuild keys after the give-back so later tasks see the right queue lengths.
      const keep: number[] = []
      while (heapSize > 0) keep.push(pop())
      for (const i of keep) push(i, scoreOf(i, assigned[i]))
    }
  }
  return { request: req, offers, predictions, rejections, copyOffer, copyFinishMs, copyScore, copyRunnerUpScore, unplaced, tasksPerOffer: assigned, totalPrice, makespanMs: makespan, elapsedOps: ops }
}

/**
 * The least predicted time of one copy (transfer + run) on the first `n` usable offers of a
 * placement (undefined: none usable): what a lease round tells the job machine a faster slot
 * would give its stragglers (speculation.ts).
 */
export function fastestRunMs (p: Placement, n = p.offers.length): number | undefined {
  let best = Infinity
  for (let i = 0; i < Math.min(n, p.offers.length); i++) if (p.rejections[i] === undefined) best = Math.min(best, p.predictions[i].transferMs + p.predictions[i].runMs)
  return Number.isFinite(best) ? best : undefined
}

/** Baseline for the cost model: each copy on a random usable offer (distinct providers). */
/**
 * The baseline policy: the same offer filters as placeTasks (price, distance, deadline,
 * refusals, avoided providers), then uniformly random offers, each copy of a task on a distinct
 * provider, within budget.total. Tasks it cannot place are marked with the reason.
 */
export function placeRandomly (req: PlacementRequest, offers: readonly OfferView[], rng: { int: (n: number) => number }): Placement {
  const p = placeTasks({ ...req, taskCount: 0 }, offers)
  let usable: number[] = []
  for (let i = 0; i < offers.length; i++) if (p.rejections[i] === undefined) usable.push(i)
  // penalised providers only when the others cannot give every copy a distinct provider
  const preferred = usable.filter(i => req.penalise?.has(offers[i].provider) !== true)
  if (preferred.length < usable.length && new Set(preferred.map(i => offers[i].provider)).size >= Math.max(1, req.copies)) usable = preferred
  const copies = Math.max(1, req.copies)
  const nCopies = req.taskCount * copies
  const copyOffer = new Int32Array(nCopies).fill(-1)
  const copyFinishMs = new Float64Array(nCopies)
  const assigned = new Int32Array(offers.length)
  const unplaced = new Map<number, UnplacedReason>()
  const providers = new Set(usable.map(i => offers[i].provider))
  const deadlineMs = req.deadlineAt === undefined ? Infinity : req.deadlineAt - req.now
  let budgetLeft = req.budgetTotal === undefined ? Infinity : req.budgetTotal - (req.alreadySpent ?? 0)
  let total = 0; let makespan = 0
  const overheadMs = Math.max(0, req.copyOverheadMs ?? COPY_OVERHEAD_MS)
  const finishOf = (i: number): number => nthCopyFinishMs(p.predictions[i], offers[i].slots, assigned[i], overheadMs)
  const noneUsable = (): UnplacedReason => {
    if (offers.length === 0) return 'no-candidates'
    const counts = new Map<OfferRejection, number>()
    for (const r of p.rejections) if (r !== undefined) counts.set(r, (counts.get(r) ?? 0) + 1)
    let best: OfferRejection = 'refused'; let bestN = -1
    for (const [r, n] of counts) if (n > bestN) { best = r; bestN = n }
    return best === 'refused' || best === 'expired' || best === 'no-slots' ? 'all-refused' : best
  }
  const chosen: number[] = []
  for (let t = 0; t < req.taskCount; t++) {
    if (usable.length === 0) { unplaced.set(t, noneUsable()); continue }
    if (providers.size < copies) { unplaced.set(t, 'not-enough-providers'); continue }
    chosen.length = 0
    let price = 0
    let why: UnplacedReason | undefined
    for (let c = 0; c < copies && why === undefined; c++) {
      // a random offer on a provider this task does not use yet, that can still finish before
      // the deadline: a few random tries first (the usual case), then a scan of them all
      const fits = (i: number): boolean => finishOf(i) <= deadlineMs && !chosen.some(j => offers[j].provider === offers[i].provider)
      let i = -1
      for (let tries = 0; tries < 16 && i < 0; tries++) { const x = usable[rng.int(usable.length)]; if (fits(x)) i = x }
      if (i < 0) {
        const open = usable.filter(fits)
        if (open.length === 0) { why = usable.some(x => finishOf(x) > deadlineMs) ? 'deadline' : 'not-enough-providers'; break }
        i = open[rng.int(open.length)]
      }
      chosen.push(i)
      price += p.predictions[i].price
      assigned[i]++ // provisional, so a second copy's finish time sees the first
    }
    if (why === undefined && price > budgetLeft) why = 'over-budget'
    if (why !== undefined) {
      for (const i of chosen) assigned[i]--
      unplaced.set(t, why)
      continue
    }
    budgetLeft -= price
    total += price
    for (let c = 0; c < copies; c++) {
      const i = chosen[c]
      // assigned[i] already counts this copy: it is the (assigned[i] - 1)-th on its offer
      const finish = nthCopyFinishMs(p.predictions[i], offers[i].slots, assigned[i] - 1, overheadMs)
      copyOffer[t * copies + c] = i
      copyFinishMs[t * copies + c] = finish
      if (finish > makespan) makespan = finish
    }
  }
  return { ...p, request: req, copyOffer, copyFinishMs, copyScore: new Float64Array(nCopies), copyRunnerUpScore: new Float64Array(nCopies).fill(NaN), unplaced, tasksPerOffer: assigned, totalPrice: total, makespanMs: makespan }
}
