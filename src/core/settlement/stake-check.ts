// Whether a provider's owner (its proven payout address) has staked enough for what it offers a
// job, by the contract's rule: stake is counted in GPUs (Settlement.providers(owner).gpus), so a
// GPU task's slot needs the task's GPUs staked, and every slot of one owner in one job (its
// peers' offers together, and the leases the job holds already) draws on the same stake. A
// CPU-only provider stakes one unit (the least the contract takes, and what redeeming needs):
// a CPU task asks only that the owner is staked. Identities are then not free: two peers with
// different payout keys that hold both copies of a redundancy-2 task have each put down a stake
// (review F4). Pure: the stake figures come in (src/jobs/stake-reads.ts reads them).

/** What the chain says an owner staked; undefined in the map: not known (the chain could not be read). */
export interface StakeFigure { gpus: number }

export type StakeRefusalCode = 'NOT_STAKED' | 'STAKE_TOO_LOW' | 'STAKE_UNKNOWN'

/** One usable offer of a round: its owner (payout address, lower case) and the slots it offers. */
export interface StakeCandidate { owner: string, slots: number }

/** `slots`: what the offer may be leased for (fewer than offered when the stake covers only those). */
export type StakeVerdict = { ok: true, slots: number } | { ok: false, code: StakeRefusalCode, reason: string }

export interface StakeCheckInput {
  /** GPUs one task takes (the manifest's resources.gpu.count; 0: a CPU task). */
  gpusPerTask: number
  /** In the order the caller prefers them: earlier offers of one owner take its stake first. */
  candidates: readonly StakeCandidate[]
  stakes: ReadonlyMap<string, StakeFigure | undefined>
  /** GPUs each owner's live leases in this job hold already (slots x gpusPerTask). */
  held?: ReadonlyMap<string, number>
}

/** Per candidate: leasable (for how many slots) or refused with a typed code and a reason for people. */
export function checkStakes (p: StakeCheckInput): StakeVerdict[] {
  const g = Math.max(0, Math.floor(p.gpusPerTask))
  const used = new Map<string, number>()
  return p.candidates.map(c => {
    const s = p.stakes.get(c.owner)
    if (s === undefined) return { ok: false, code: 'STAKE_UNKNOWN', reason: `STAKE_UNKNOWN: the stake of payout address ${c.owner} could not be read from the chain (unreachable or slow); the job waits for it` }
    const staked = Math.max(0, Math.floor(s.gpus))
    if (staked === 0) return { ok: false, code: 'NOT_STAKED', reason: `NOT_STAKED: payout address ${c.owner} has no stake on chain; a provider stakes with \`dbc stake N\` (auto-stake on a local network), or the job allows unstaked providers (verification.allowUnstaked)` }
    if (g === 0) return { ok: true, slots: c.slots }
    const taken = (p.held?.get(c.owner) ?? 0) + (used.get(c.owner) ?? 0)
    const slots = Math.min(c.slots, Math.floor(Math.max(0, staked - taken) / g))
    if (slots <= 0) {
      const inUse = taken > 0 ? `, ${taken} of them held by its other leases and offers in this job` : ''
      return { ok: false, code: 'STAKE_TOO_LOW', reason: `STAKE_TOO_LOW: payout address ${c.owner} staked ${staked} GPU${staked === 1 ? '' : 's'}${inUse}; one task needs ${g}: it stakes more with \`dbc stake N\`` }
    }
    used.set(c.owner, (used.get(c.owner) ?? 0) + slots * g)
    return { ok: true, slots }
  })
}
