// A manifest's job policy: what the job machine and the lease search are told (sans-IO).
import { quorumOf, spotChecksOf, placementWaitMs, type Manifest } from './manifest.js'
import { DEFAULT_WAIT_MS, type LeaseSearchPolicy } from './lease-search.js'
import type { JobPolicy } from './job-machine.js'

export interface JobPolicyOverrides { leaseTimeoutMs?: number, stragglerFactor?: number, giveUpAfterMs?: number, waitMs?: number }

export function jobPolicyOf (m: Manifest, taskCount: number, o: JobPolicyOverrides = {}): JobPolicy {
  const v = m.verification
  return {
    taskCount,
    redundancy: v.redundancy,
    quorum: quorumOf(m),
    maxCopies: v.maxCopies,
    maxAttempts: m.task.maxAttempts,
    taskTimeoutMs: m.task.timeoutMs,
    leaseTimeoutMs: o.leaseTimeoutMs ?? 2000,
    adaptive: v.adaptive,
    spotCheckRate: v.spotCheckRate,
    // the default checks (verification.mode spot-check)
    spotChecks: spotChecksOf(m),
    stragglerFactor: o.stragglerFactor ?? 3,
    declaredResultBound: m.task.maxResultBytes !== undefined
  }
}

export function leaseSearchPolicyOf (m: Manifest, o: JobPolicyOverrides = {}): LeaseSearchPolicy {
  return { giveUpMs: o.giveUpAfterMs, waitMs: placementWaitMs(m, o.waitMs ?? DEFAULT_WAIT_MS) }
}
