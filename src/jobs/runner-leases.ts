// One round of looking for leases, for the runner: ask providers for offers, place the remaining
// tasks with the cost model, lock the escrow before the first lease, open signed leases on the
// offers placement used. Returns what the round found (core/scheduler/lease-search.ts decides
// whether to ask again, wait for busy providers or give the tasks up).
import { peerIdFromString } from '@libp2p/peer-id'
import { dbc } from '../wire/gen/wire.js'
import { ed25519KeyFromPeerIdBytes, toHex } from '../core/identity/index.js'
import { createRng } from '../core/rng.js'
import {
  placeTasks, placeRandomly, fastestRunMs, leasesForRound, leaseCapOf, taskPricePerHour, deadlineAt, expectedInputBytes, signLease, refusalCode, rulesOutForGood, describeUnplaced,
  type JobMachine, type Manifest, type OfferView, type Placement, type PlacementRequest, type ReputationBook, type SearchRound, type SearchMode
} from '../core/scheduler/index.js'
import { LEASE_TASKS_AHEAD, offerBundleOf } from '../core/scheduler/ports.js'
import { MAX_RESULT_BYTES } from '../core/scheduler/manifest.js'
import { checkPayoutBinding, domainOfTerms } from '../core/settlement/payout-binding.js'
import { checkStakes } from '../core/settlement/stake-check.js'
import { verifyOffer } from '../core/compute/offer.js'
import { nodeSuite } from '../crypto/suite.js'
import type { TransportOffer } from './transport.js'
import { OfferSilence } from './offer-silence.js'
import type { JobRunnerInit } from './runner-types.js'
import type { RunnerPayments } from './runner-payments.js'

const enc = new TextEncoder()
export const hexToBytes = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], b => parseInt(b, 16))

/** How long a provider whose offers carry no payout binding yet counts as busy (it may still be signing it). */
export const UNBOUND_GRACE_MS = 30_000
/**
 * Copies of short tasks sent to a lease beyond its slots: they wait at the provider for a slot (its
 * payment gate admits each only when a slot frees), so a slot does not idle for a round trip and
 * this runner's step between copies. Six, not two: a provider sends a result while others of
 * the lease run up to LEASE_WRITE_LINGER_MS late (several in one write: src/net/lease-writer.ts),
 * and the copies queued there keep its slots busy meanwhile. Less than the provider's lease stream
 * reads ahead (src/net/task-lease-stream.ts LEASE_STREAM_QUEUED, 7; a test pins it), so that stream
 * always has room to read a cancel at once.
 */
export const LEASE_READ_AHEAD = LEASE_TASKS_AHEAD
export const READ_AHEAD_BELOW_MS = 250

/**
 * The peer id bytes of a transport id when it is an Ed25519 libp2p peer id (the libp2p transport:
 * the authenticated peer that answered); undefined for in-process ids (the provider object itself answered).
 */
export function answeringPeer (id: string): Uint8Array | undefined {
  try {
    const bytes = peerIdFromString(id).toMultihash().bytes
    return ed25519KeyFromPeerIdBytes(bytes) !== undefined ? bytes : undefined
  } catch {
    return undefined
  }
}

export interface LeaseRoundsDeps {
  init: JobRunnerInit
  m: Manifest
  jobId: string
  rep: ReputationBook
  payments: RunnerPayments
  signer: (msg: Uint8Array) => Uint8Array
  now: () => number
  machine: () => JobMachine
  /** What a resumed job billed before its restart (tokens): placement's budget starts below it. */
  spentBefore?: () => number
}

/** A round that ended the job's search for good (no escrow): nothing new starts. */
export interface LeaseRoundResult extends SearchRound { stopped?: boolean }

export class LeaseRounds {
  placement?: Placement
  /** Candidates asked for offers that gave none, across rounds (explain). */
  readonly silence = new OfferSilence()
  /** Predicted price of one copy per provider. */
  readonly pricePerCopy = new Map<string, number>()
  readonly providersUsed = new Set<string>()
  /** Transport id of a leased provider -> its peer id bytes (what its receipts must name). */
  readonly providerBytes = new Map<string, Uint8Array>()
  /** Lease id (hex) -> its bytes. */
  readonly leaseIds = new Map<string, Uint8Array>()
  /** For `placement: random` only (a baseline policy); seeded from the CSPRNG. */
  private readonly placementRng = createRng(crypto.getRandomValues(new Uint32Array(1))[0])
  private escrowed = false
  /** Provider -> when its offers were first seen without a payout binding (the grace of UNBOUND_GRACE_MS). */
  private readonly unboundSince = new Map<string, number>()
  /** The offer each live lease came from: a `more` round places against them too (bounded: one per leased provider). */
  private readonly leasedViews = new Map<string, OfferView>()
  /** Set by the runner once it knows them. */
  startedAt = 0
  fileSize?: number
  taskCount = 0
  /** The job's largest task input: what its lease requests announce (a provider's frame limit). */
  maxInputBytes = 0
  /** The job's largest task result (manifest task.maxResultBytes): announced, and each lease's result frame bound. */
  get maxResultBytes (): number { return this.d.m.task.maxResultBytes ?? MAX_RESULT_BYTES }
  signal?: AbortSignal

  constructor (private readonly d: LeaseRoundsDeps) {}

  leaseRequest (): dbc.task.v1.ILeaseRequest {
    const { m, init } = this.d
    const r = m.resources
    return {
      jobId: hexToBytes(this.d.jobId),
      requester: init.holder.peerId,
      resources: { gpuModel: r.gpu?.model ?? '', gpuCount: r.gpu?.count ?? 0, gpuMemoryMib: r.gpu?.memoryMib ?? 0, cpuCores: r.cores, memoryMib: r.memoryMib },
      slots: Math.min(1024, this.taskCount * m.verification.redundancy),
      maxPriceHour: m.budget.maxPricePerHour ?? 0,
      executor: m.executor,
      expectedTaskMs: m.task.expectedMs,
      maxInputBytes: this.maxInputBytes,
      maxResultBytes: this.maxResultBytes,
      // this submitter runs TaskBundles: a provider may offer bundle_max (an older submitter, not
      // asking, gets offers without it: it re-encodes an offer to check its signature and would drop the field)
      bundles: true,
      requestExpiresAt: this.d.now() + 10_000,
      ...(init.payment !== undefined ? { payment: init.payment.terms } : {})
    }
  }

  /**
   * Asks for offers, places the remaining tasks, and leases the offers placement used. A `more`
   * round (copies are running) rules no task out; `penalise`: providers placement puts last.
   */
  async round (mode: SearchMode = 'starved', penalise?: ReadonlySet<string>): Promise<LeaseRoundResult> {
    const { m, init, rep } = this.d
    const machine = this.d.machine()
    const exclude = new Set<string>([...machine.avoidedProviders, ...machine.liveLeases().map(l => l.provider)])
    const answers = await init.transport.requestOffers(this.leaseRequest(), { signal: this.signal, exclude, location: m.location, report: r => { this.silence.record(r) } })
    // an offer must be the answering peer's own, signed by it: a peer that replays another's offer (and its
    // payout binding) is dropped, so binding, lease and payee name the peer that answered (OFFER_FORGED)
    const refusals: string[] = []
    let lastRefusal: string | undefined
    const got: Array<TransportOffer & { peer: Uint8Array }> = []
    const checkedAt = this.d.now()
    for (const o of answers) {
      const answered = answeringPeer(o.view.provider)
      const c = verifyOffer(o.offer, checkedAt, answered, nodeSuite.verify)
      if (!c.ok && c.code === 'OFFER_FORGED') {
        refusals.push(c.code)
        lastRefusal = `provider ${o.view.provider} sent an offer that is not its own: ${c.reason}`
        continue
      }
      got.push({ ...o, peer: answered ?? o.offer.provider ?? new Uint8Array(0) })
    }
    const views: OfferView[] = got.map(o => ({ ...o.view, reputation: o.view.reputation ?? rep.score(o.view.provider) }))
    // paid work goes only to providers whose payout key signed their peer id on this job's chain
    // (core/settlement/payout-binding.ts): an unbound offer counts as a PAYOUT_NOT_BOUND refusal
    const domain = init.payment !== undefined ? domainOfTerms(init.payment.terms) : undefined
    const now = this.d.now()
    // a provider with no binding yet may still be signing it (a fresh node): it counts as BUSY for
    // UNBOUND_GRACE_MS, so the job waits for it; a wrong binding is refused at once
    const waitingForBinding = new Set<number>()
    /** views[i]'s proven payout address (lower case): its owner, whose stake is checked below. */
    const owners: Array<string | undefined> = []
    // views[i] is got[i] (an offer id names nothing across peers: another peer may send the same one)
    for (const [i, v] of views.entries()) {
      if (domain === undefined || v.refusal !== undefined) continue
      const { offer: raw, peer } = got[i]
      const c = checkPayoutBinding(peer, raw.payoutAddress ?? '', raw.payoutBinding, domain)
      if (c.ok) { owners[i] = c.payout.toLowerCase(); continue }
      v.refusal = `${c.code}: ${c.reason}`
      if ((raw.payoutBinding == null || raw.payoutBinding.length === 0) && /^0x[0-9a-fA-F]{40}$/.test(raw.payoutAddress ?? '')) {
        if (!this.unboundSince.has(v.provider) && this.unboundSince.size < 4096) this.unboundSince.set(v.provider, now)
        const since = this.unboundSince.get(v.provider)
        if (since !== undefined && now - since < UNBOUND_GRACE_MS) waitingForBinding.add(i)
      }
    }
    // and only to owners whose stake covers what they offer (review F4): refused, or leased for fewer slots
    await this.checkStake(views, owners, machine)
    for (const [i, v] of views.entries()) {
      if (v.refusal === undefined) continue
      refusals.push(waitingForBinding.has(i) ? 'BUSY' : refusalCode(v.refusal))
      lastRefusal = v.refusal
    }
    const remaining = machine.progress()
    const req: PlacementRequest = {
      now,
      taskCount: Math.max(1, remaining.total - remaining.done - remaining.failed),
      copies: m.verification.redundancy,
      expectedTaskMs: m.task.expectedMs,
      inputBytes: expectedInputBytes(m, this.fileSize),
      gpuCount: m.resources.gpu?.count ?? 0,
      cores: m.resources.cores,
      maxPricePerHour: m.budget.maxPricePerHour,
      budgetTotal: m.budget.total,
      alreadySpent: this.d.spentBefore?.(),
      deadlineAt: deadlineAt(m, init.submittedAt ?? this.startedAt),
      maxDistanceKm: m.location?.maxDistanceKm,
      avoid: machine.avoidedProviders,
      penalise
    }
    // a `more` round places against the leases it holds as well (they are not asked again): a far
    // offer is leased only when the cost model would give it work beside the near leases it has;
    // so does a starved one whose offers alone are too few distinct providers for the job's
    // redundancy: its leased providers count (one of two came back: it is leased beside the other,
    // not 'not-enough-providers' for ever)
    const short = m.verification.redundancy > 1 && new Set(views.filter(v => v.refusal === undefined).map(v => v.provider)).size < m.verification.redundancy
    const held = mode === 'more' || short ? machine.liveLeases().map(l => this.leasedViews.get(l.provider)).filter((v): v is OfferView => v !== undefined && !views.some(x => x.provider === v.provider)) : []
    const all = [...views, ...held]
    const p = m.placement === 'random' ? placeRandomly(req, all, this.placementRng) : placeTasks(req, all)
    if (this.placement === undefined || this.placement.unplaced.size === this.placement.request.taskCount) this.placement = p
    for (let i = 0; i < views.length; i++) if (p.rejections[i] === undefined) this.pricePerCopy.set(views[i].provider, p.predictions[i].price)
    // Tasks the cost model rules out for good (budget, price, deadline, distance) fail with the reason.
    if (mode === 'starved' && remaining.done + remaining.failed === 0) {
      for (const [t, reason] of p.unplaced) if (rulesOutForGood(reason)) machine.handleTaskRejected(now, t, `not placed: ${describeUnplaced(reason)}`)
    }
    const unplaced = p.unplaced.values().next().value
    const placed = views.map((v, i) => ({ v, i })).filter(x => p.tasksPerOffer[x.i] > 0)
      .sort((a, b) => p.predictions[a.i].runMs - p.predictions[b.i].runMs)
    // a `more` round tops the job up to its lease cap (leases, then slots); a starved one (its leases can run nothing) may lease 64 anew (lease-cap.ts)
    const used = placed.slice(0, leasesForRound(leaseCapOf(init), mode, machine.leasesHeld(), placed.map(x => x.v.slots)))
    const busyLeases: string[] = []
    const unusedOffers = p.rejections.slice(0, views.length).filter(r => r === undefined).length - used.length
    const outcome = (leased: number, more: { stopped?: boolean, lastRefusal?: string } = {}): LeaseRoundResult =>
      ({ offers: views.length - refusals.length, refusals, leased, liveLeases: machine.liveLeases().length, unplaced, lastRefusal: more.lastRefusal ?? lastRefusal, stopped: more.stopped, busyLeases, unusedOffers, answered: answers.map(o => o.view.provider), fastestRunMs: fastestRunMs(p, views.length) })
    // money first: no provider works for this job before its escrow is on chain. The deposit runs
    // while the leases are signed and their streams open: a lease leaves only once the deposit is
    // mined (openLease's `ready`); a failed deposit sends none and ends the job
    let escrow: Promise<{ err?: Error }> | undefined
    if (used.length > 0 && !this.escrowed && init.payment?.ensureEscrow !== undefined) {
      const hours = m.task.timeoutMs / 3_600_000
      const reserve = used.reduce((sum, { v }) => sum + taskPricePerHour(m, v.priceGpuHour, v.priceCpuHour) * hours, 0)
      escrow = init.payment.ensureEscrow(p.totalPrice, reserve).then(() => { this.escrowed = true; return {} }, (err: Error) => ({ err }))
    }
    const ready = escrow?.then(r => { if (r.err !== undefined) throw r.err })
    ready?.catch(() => {}) // each lease reads it; with no lease the deposit's end is read below
    const escrowFailed = async (): Promise<LeaseRoundResult | undefined> => {
      const err = (await escrow)?.err
      if (err === undefined) return undefined
      machine.handleGiveUp(this.d.now(), `no escrow: ${err.message}`, true)
      return outcome(0, { stopped: true })
    }
    // the payer authorises this node as the lease holder once per job (providers refuse leases without
    // it, and charge the sender): no signature yet (chain key busy or down), no lease this round
    let payment: dbc.task.v1.IPaymentTerms | undefined
    try {
      payment = await this.d.payments.leaseTerms()
    } catch (err) {
      init.payment?.onError?.(err as Error)
      return await escrowFailed() ?? outcome(0, { lastRefusal: `the lease holder could not be authorised for the escrow: ${(err as Error).message}` })
    }
    let opened = 0
    const leased = Promise.all(used.map(async ({ v, i }, rank) => {
      const { offer: raw, peer } = got[i]
      const prices = { priceGpuHour: raw.priceGpuHour ?? 0, priceCpuHour: raw.priceCpuHour ?? 0 }
      // a payee before the lease: a provider its payer would not pay gets no work (PAYOUT_NOT_BOUND, PAYOUT_SHARED)
      if (init.payment !== undefined && !init.payment.payer.addPayee(v.provider, { payout: raw.payoutAddress ?? '', prices, providerBytes: peer, binding: raw.payoutBinding, domain })) {
        refusals.push('PAYOUT_NOT_BOUND')
        lastRefusal = `provider ${v.provider} can not be paid in this job: its payout address is not proven (see the job's log)`
        return
      }
      const leaseId = enc.encode(`${this.d.jobId.slice(0, 16)}:${v.offerId}:${now}`)
      const lease = signLease(this.d.signer, {
        leaseId, offerId: raw.offerId, jobId: hexToBytes(this.d.jobId), holder: init.holder.peerId, provider: peer,
        expiresAt: now + 24 * 3_600_000, heartbeatMs: 200,
        ...(payment !== undefined ? { payment } : {})
      })
      const runMs = p.predictions[i].transferMs + p.predictions[i].runMs
      // tiny tasks (the read-ahead test) on a provider that runs TaskBundles (its signed offer's
      // bundle_max): each slot takes up to `bundle` copies in one frame; an older provider's offer has none
      const tiny = runMs <= READ_AHEAD_BELOW_MS
      const bundle = tiny ? offerBundleOf(raw.bundleMax) : 1
      try {
        // the bound as the manifest declares it (undefined: the default, TASK_MAX_FRAME; see ports.ts)
        await init.transport.openLease(v.provider, lease, { signal: this.signal, maxResultBytes: this.d.m.task.maxResultBytes, ...(bundle > 1 ? { bundle } : {}), ...(ready !== undefined ? { ready } : {}) })
      } catch (err) {
        // no escrow: the job ends below (not a provider's refusal)
        if ((await escrow)?.err !== undefined) return
        // unreachable or refused (busy since its offer, NO_ESCROW...): not leased; its code counts
        const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'LEASE_REFUSED'
        refusals.push(code)
        if (code === 'BUSY') busyLeases.push(v.provider)
        lastRefusal = (err as Error).message
        return
      }
      const id = toHex(leaseId)
      this.leaseIds.set(id, leaseId)
      this.providersUsed.add(v.provider)
      this.providerBytes.set(v.provider, peer)
      if (this.leasedViews.size < 4096) this.leasedViews.set(v.provider, v)
      this.d.payments.offerPrices.set(v.provider, prices)
      // a paid lease's payout address is bound to this peer by its key (addPayee above): peers of one
      // payout key are one owner, never two opinions on one task (review s14 cheat F3)
      const owner = init.payment !== undefined ? init.payment.payer.payoutOf(v.provider) : undefined
      machine.handleLease(this.d.now(), { leaseId: id, provider: v.provider, slots: v.slots, rank, runMs, ...(tiny ? { readAhead: LEASE_READ_AHEAD } : {}), ...(bundle > 1 ? { bundle } : {}), ...(owner !== undefined ? { owner } : {}) })
      opened++
    }))
    await leased
    return await escrowFailed() ?? outcome(opened)
  }

  /**
   * Refuses the usable offers whose owner (proven payout address) has not staked enough for them,
   * and trims the slots of those it covers in part (core/settlement/stake-check.ts); the GPUs the
   * job's live leases hold count against their owner's stake. One read per owner, cached
   * (src/jobs/stake-reads.ts); without `payment.stakes` nothing is checked.
   */
  private async checkStake (views: OfferView[], owners: ReadonlyArray<string | undefined>, machine: JobMachine): Promise<void> {
    const pay = this.d.init.payment
    if (pay?.stakes === undefined) return
    const idx = views.flatMap((v, i) => v.refusal === undefined && owners[i] !== undefined ? [i] : [])
    if (idx.length === 0) return
    const g = this.d.m.resources.gpu?.count ?? 0
    const held = new Map<string, number>()
    for (const l of machine.liveLeases()) {
      const o = pay.payer.payoutOf(l.provider)?.toLowerCase()
      if (o !== undefined) held.set(o, (held.get(o) ?? 0) + l.slots * g)
    }
    const figures = await pay.stakes(idx.map(i => owners[i] as string), this.signal)
    const verdicts = checkStakes({ gpusPerTask: g, candidates: idx.map(i => ({ owner: owners[i] as string, slots: views[i].slots })), stakes: figures, held })
    for (const [k, i] of idx.entries()) {
      const v = verdicts[k]
      if (v.ok) views[i].slots = v.slots
      else views[i].refusal = v.reason
    }
  }
}
