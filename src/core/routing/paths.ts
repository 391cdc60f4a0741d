// Choosing k paths for a message: direct when we are connected to the recipient, then relays
// with the lowest predicted latency, each in a different geo cell so one regional failure does
// not take out every copy. Relays in an already used cell are only taken when nothing else is left.

export interface RelayCandidate<P> {
  peer: P
  /** Geo cell of the relay (e.g. its r3 cell id); diversity is measured on this. */
  cell: string
  /** Predicted one-way latency sender → relay → recipient, ms. */
  predictedMs: number
}

export interface Path<P> {
  /** undefined = direct to the recipient. */
  via?: P
  predictedMs: number
  cell?: string
}

export interface ChoosePathsInput<P> {
  k: number
  /** The direct path, when usable (connected, or dialable). */
  direct?: { predictedMs: number }
  candidates: ReadonlyArray<RelayCandidate<P>>
  /** Never relay through these (the recipient itself, ourselves, low-score peers). */
  exclude?: readonly P[]
}

/** Returns up to k paths (first the chosen ones) and the spares in preference order for retries. */
export function choosePaths<P> (input: ChoosePathsInput<P>): { paths: Array<Path<P>>, spares: Array<Path<P>> } {
  const exclude = input.exclude ?? []
  const sorted = input.candidates
    .filter(c => !exclude.includes(c.peer) && Number.isFinite(c.predictedMs))
    .slice()
    .sort((a, b) => a.predictedMs - b.predictedMs)
  const seenPeers = new Set<P>()
  const usedCells = new Set<string>()
  const diverse: Array<Path<P>> = []
  const rest: Array<Path<P>> = []
  for (const c of sorted) {
    if (seenPeers.has(c.peer)) continue
    seenPeers.add(c.peer)
    const path: Path<P> = { via: c.peer, predictedMs: c.predictedMs, cell: c.cell }
    if (usedCells.has(c.cell)) rest.push(path)
    else { usedCells.add(c.cell); diverse.push(path) }
  }
  const ordered: Array<Path<P>> = []
  if (input.direct !== undefined) ordered.push({ predictedMs: input.direct.predictedMs })
  ordered.push(...diverse, ...rest)
  const k = Math.max(1, input.k)
  return { paths: ordered.slice(0, k), spares: ordered.slice(k) }
}
