// The baseline for `npm run bench -- sim`: the same findPeer model written the way most
// simulators are (PeerSim/OverSim style): an object per node with bucket arrays of node
// objects, byte-array ids with a byte-wise XOR compare, events as objects with closures
// in a binary heap, a Set per lookup. It exists only to be measured against.
import { SimRandom } from '../engine/random.js'
import { placeNodes } from '../network/population.js'

interface NaiveNode { index: number, id: Uint8Array, server: boolean, buckets: NaiveNode[][], x: number, y: number, z: number, access: number }
interface NaiveEvent { time: number, seq: number, run: () => void }

class ObjectHeap {
  private items: NaiveEvent[] = []
  get size (): number { return this.items.length }
  push (e: NaiveEvent): void {
    const a = this.items; a.push(e); let i = a.length - 1
    while (i > 0) { const p = (i - 1) >> 1; if (less(a[p], e)) break; a[i] = a[p]; i = p }
    a[i] = e
  }

  pop (): NaiveEvent | undefined {
    const a = this.items; const top = a[0]; const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1; const r = l + 1; let m = i
        const cur = m === i ? last : a[m]
        let best = cur
        if (l < a.length && less(a[l], best)) { m = l; best = a[l] }
        if (r < a.length && less(a[r], best)) { m = r; best = a[r] }
        if (m === i) break
        a[i] = a[m]; i = m
      }
      a[i] = last
    }
    return top
  }
}
const less = (x: NaiveEvent, y: NaiveEvent): boolean => x.time < y.time || (x.time === y.time && x.seq < y.seq)

function xorCompare (a: Uint8Array, b: Uint8Array, t: Uint8Array): number {
  for (let i = 0; i < 32; i++) { const x = a[i] ^ t[i]; const y = b[i] ^ t[i]; if (x !== y) return x < y ? -1 : 1 }
  return 0
}
function cpl (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) { const x = a[i] ^ b[i]; if (x !== 0) return i * 8 + Math.clz32(x) - 24 }
  return 256
}

export interface NaiveResult { nodes: number, lookups: number, succeeded: number, meanHops: number, wallMs: number, setupMs: number, liveBytesPerNode: number, eventsPerSec: number }

export function runNaiveLookups (count: number, seed: number, k = 20, alpha = 3, disjointPaths = alpha): NaiveResult {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.(); const before = process.memoryUsage()
  const t0 = performance.now()
  const rng = new SimRandom(seed)
  const pop = placeNodes(count, rng.fork())
  const nodes: NaiveNode[] = []
  for (let i = 0; i < count; i++) {
    nodes.push({ index: i, id: rng.bytes32(), server: pop.nat[i] === 0, buckets: [], x: pop.x[i], y: pop.y[i], z: pop.z[i], access: pop.accessMs[i] })
  }
  // Every node hears of every server once, as a bootstrap would, and keeps k per bucket.
  const servers = nodes.filter(n => n.server)
  for (const n of nodes) {
    const order = servers.slice()
    for (let i = order.length - 1; i > 0; i--) { const j = rng.int(i + 1); const t = order[i]; order[i] = order[j]; order[j] = t }
    for (const s of order) {
      if (s === n) continue
      const b = cpl(n.id, s.id)
      const bucket = (n.buckets[b] ??= [])
      if (bucket.length < k) bucket.push(s)
    }
  }
  const setupMs = performance.now() - t0
  gc?.(); const after = process.memoryUsage()
  const liveBytesPerNode = ((after.heapUsed + after.arrayBuffers) - (before.heapUsed + before.arrayBuffers)) / count
  const heap = new ObjectHeap(); let seq = 0; let events = 0
  const schedule = (time: number, run: () => void): void => { heap.push({ time, seq: seq++, run }); events++ }
  const rtt = (a: NaiveNode, b: NaiveNode): number => {
    const dot = Math.max(-1, Math.min(1, a.x * b.x + a.y * b.y + a.z * b.z))
    return 2 * (a.access + b.access + 6371 * Math.acos(dot) * 1.7 / 200 + rng.exp(1)) * 3
  }
  const closest = (n: NaiveNode, target: Uint8Array, exclude: NaiveNode): NaiveNode[] => {
    const all: NaiveNode[] = []
    for (const b of n.buckets) if (b !== undefined) for (const p of b) if (p !== exclude) all.push(p)
    all.sort((a, b) => xorCompare(a.id, b.id, target))
    return all.slice(0, k)
  }
  let succeeded = 0; let hopsSum = 0; let finished = 0
  const lookup = (now: number, origin: NaiveNode, target: NaiveNode): void => {
    let done = false
    const seen = new Set<NaiveNode>()
    const start = closest(origin, target.id, origin)
    for (let i = start.length - 1; i > 0; i--) { const j = rng.int(i + 1); const t = start[i]; start[i] = start[j]; start[j] = t }
    const paths = Array.from({ length: Math.min(disjointPaths, start.length) }, () => ({ queue: [] as Array<{ node: NaiveNode, depth: number }>, running: 0, closest: [] as NaiveNode[] }))
    let live = paths.length
    const end = (ok: boolean, hops: number): void => { if (done) return; done = true; finished++; if (ok) { succeeded++; hopsSum += hops } }
    const canAdd = (path: typeof paths[0], n: NaiveNode): boolean => path.closest.length < k || xorCompare(n.id, path.closest[path.closest.length - 1].id, target.id) < 0
    const pump = (path: typeof paths[0], t: number): void => {
      path.queue.sort((a, b) => xorCompare(b.node.id, a.node.id, target.id))
      while (!done && path.running < alpha && path.queue.length > 0) {
        const item = path.queue.pop() as { node: NaiveNode, depth: number }
        if (!canAdd(path, item.node)) continue
        path.running++
        schedule(t + rtt(origin, item.node), () => {
          if (done) return
          path.running--
          const r = item.node
          if (r === target) { end(true, item.depth); return }
          path.closest.push(r); path.closest.sort((a, b) => xorCompare(a.id, b.id, target.id)); if (path.closest.length > k) path.closest.pop()
          const closer = closest(r, target.id, origin)
          if (closer.includes(target)) { end(true, item.depth); return }
          for (const c of closer) {
            if (seen.has(c) || xorCompare(c.id, r.id, target.id) >= 0 || !canAdd(path, c)) continue
            seen.add(c); path.queue.push({ node: c, depth: item.depth + 1 })
          }
          pump(path, heapTime)
        })
      }
      if (!done && path.running === 0 && path.queue.length === 0) { if (--live === 0) end(false, 0) }
    }
    start.forEach((p, i) => { seen.add(p); paths[i % paths.length].queue.push({ node: p, depth: 1 }) })
    for (const p of paths) pump(p, now)
    if (paths.length === 0) end(false, 0)
  }
  let heapTime = 0
  for (let i = 0; i < count; i++) {
    const origin = nodes[rng.int(count)]
    let target = servers[rng.int(servers.length)]
    if (target === origin) target = servers[(servers.indexOf(target) + 1) % servers.length]
    schedule(i, () => lookup(heapTime, origin, target))
  }
  const t1 = performance.now()
  while (heap.size > 0) { const e = heap.pop() as NaiveEvent; heapTime = e.time; e.run() }
  const wallMs = performance.now() - t1
  return { nodes: count, lookups: finished, succeeded, meanHops: hopsSum / Math.max(1, succeeded), wallMs, setupMs, liveBytesPerNode, eventsPerSec: events / (wallMs / 1000) }
}
