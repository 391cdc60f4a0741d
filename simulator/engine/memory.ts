// Live memory after a forced GC. Typed arrays keep their data outside the JS heap
// (process.memoryUsage().arrayBuffers), so "live bytes" counts both: the heap alone would
// flatter a struct-of-arrays design.

export interface LiveMemory {
  heapUsed: number
  arrayBuffers: number
  /** heapUsed + arrayBuffers */
  live: number
  rss: number
  /** Whether a real GC ran (node started with --expose-gc). */
  forcedGc: boolean
}

export function measureLiveMemory (): LiveMemory {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) { gc(); gc() }
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, live: m.heapUsed + m.arrayBuffers, rss: m.rss, forcedGc: gc !== undefined }
}
