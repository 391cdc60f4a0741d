// Group formation for a training job: from the candidate peers that match the job's GPU
// requirements, pick K that are close to EACH OTHER (an all-reduce round waits for its slowest
// link), not merely close to the submitter. For every candidate as a seed, take its K−1
// nearest by predicted latency; keep the group whose largest pairwise latency is smallest
// (ties: smaller sum, then price). O(n² log n) for n candidates: fine for the hundreds a
// capability lookup returns. Latency comes from the caller (Vivaldi's predictRtt, or a geo model).

export interface GroupCandidate {
  peer: string
  gpuModel?: string
  gpuCount: number
  gpuMemoryGiB?: number
  /** Price per GPU-hour (or per CPU-hour for CPU jobs); lower wins ties. */
  price?: number
}

export interface GroupRequirements {
  size: number
  gpuModel?: string
  gpuCount?: number
  gpuMemoryGiB?: number
}

export type GroupResult =
  | { ok: true, members: string[], maxLatencyMs: number, sumLatencyMs: number }
  | { ok: false, reason: string, eligible: number }

export function matchesRequirements (c: GroupCandidate, req: GroupRequirements): boolean {
  if ((req.gpuCount ?? 0) > c.gpuCount) return false
  if (req.gpuModel !== undefined && c.gpuModel?.toLowerCase() !== req.gpuModel.toLowerCase()) return false
  if (req.gpuMemoryGiB !== undefined && (c.gpuMemoryGiB ?? 0) < req.gpuMemoryGiB) return false
  return true
}

export function formGroup (candidates: readonly GroupCandidate[], req: GroupRequirements, latencyMs: (a: string, b: string) => number): GroupResult {
  const eligible = candidates.filter(c => matchesRequirements(c, req))
  const k = req.size
  if (k < 1) return { ok: false, reason: 'group size must be at least 1', eligible: eligible.length }
  if (eligible.length < k) return { ok: false, reason: `${eligible.length} peer(s) match the requirements, the job needs ${k}`, eligible: eligible.length }
  const price = new Map(eligible.map(c => [c.peer, c.price ?? 0]))
  let best: { members: string[], max: number, sum: number, price: number } | undefined
  for (const seed of eligible) {
    const others = eligible.filter(c => c.peer !== seed.peer)
      .map(c => ({ peer: c.peer, d: latencyMs(seed.peer, c.peer) }))
      .sort((a, b) => a.d - b.d || (price.get(a.peer)! - price.get(b.peer)!) || (a.peer < b.peer ? -1 : 1))
    const members = [seed.peer, ...others.slice(0, k - 1).map(o => o.peer)]
    let max = 0
    let sum = 0
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        const d = latencyMs(members[i], members[j])
        sum += d
        if (d > max) max = d
      }
    }
    const cost = members.reduce((a, m) => a + price.get(m)!, 0)
    if (best === undefined || max < best.max || (max === best.max && (sum < best.sum || (sum === best.sum && cost < best.price)))) {
      best = { members, max, sum, price: cost }
    }
  }
  const members = [...best!.members].sort()
  return { ok: true, members, maxLatencyMs: best!.max, sumLatencyMs: best!.sum }
}
