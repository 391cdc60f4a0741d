// The demo's grid job: a Mandelbrot image rendered in tiles by the wasm module, one task per
// tile, across the local network; the tiles come back, are stitched and written as a PNG.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PNG } from 'pngjs'
import { planTiles, stitchTiles, type Tile } from '../src/compute/mandelbrot.js'
import type { LocalNode } from './network.js'

export interface FractalJobResult {
  jobId: string
  status: Record<string, any>
  png: string
  width: number
  height: number
  tiles: number
}

export async function runFractalJob (submitter: LocalNode, workDir: string, outDir: string, opts: { width?: number, height?: number, tile?: number, onProgress?: (done: number, total: number, running: number) => void } = {}): Promise<FractalJobResult> {
  const width = opts.width ?? 960
  const height = opts.height ?? 640
  const tileSize = opts.tile ?? 64
  const step = 3.0 / width
  const tiles: Tile[] = planTiles(width, height, tileSize, { x0: -2.2, y0: -height / 2 * step, step, maxIterations: 2000 })
  // one 36-byte input per tile, concatenated: the manifest partitions the file into tasks
  const inputs = Buffer.concat(tiles.map(t => t.input))
  mkdirSync(workDir, { recursive: true })
  writeFileSync(join(workDir, 'tiles.bin'), inputs)
  const manifest = {
    name: 'mandelbrot',
    executor: 'wasm',
    code: { wasm: fileURLToPath(new URL('../src/compute/modules/mandelbrot.wasm', import.meta.url)) },
    entry: 'run',
    inputs: { files: { path: 'tiles.bin', chunkBytes: 36 } },
    resources: { cores: 1, memoryMib: 64 },
    // no verification section: the default checks apply; the escrow is budget.total (1 DBC: the
    // job costs a few thousandths at the providers' 18-36 DBC per CPU-hour; the rest is refunded)
    budget: { maxPricePerHour: 40, total: 1 },
    task: { timeoutMs: 30_000, expectedMs: 20, maxAttempts: 5 }
  }
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: workDir })
  let status: Record<string, any> = {}
  for await (const ev of submitter.api.stream<Record<string, any>>('GET', `/v1/jobs/${jobId}/events`)) {
    if (ev.type === 'end') { status = ev.status; break }
    const p = ev.progress
    if (p != null) opts.onProgress?.(p.done, p.total, p.running)
  }
  if (status.status !== 'finished') throw new Error(`the fractal job ended ${String(status.status)}: ${JSON.stringify(status.summary?.failures?.slice(0, 3) ?? [])}`)
  const { results } = await submitter.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${jobId}/results`)
  const byIndex = new Map(results.map(r => [r.index, Buffer.from(r.output, 'base64')]))
  const rgba = stitchTiles(width, height, tiles.map(tile => {
    const out = byIndex.get(tile.index)
    if (out === undefined) throw new Error(`tile ${tile.index} has no result`)
    return { tile, rgba: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) }
  }))
  const png = new PNG({ width, height })
  png.data = Buffer.from(rgba)
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, 'mandelbrot.png')
  writeFileSync(file, PNG.sync.write(png))
  return { jobId, status, png: file, width, height, tiles: tiles.length }
}
