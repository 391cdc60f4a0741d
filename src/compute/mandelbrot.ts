// Helpers for the Mandelbrot task module (src/compute/modules/mandelbrot.wasm): encode a tile's
// input, split an image into tiles (one task each), and stitch the RGBA tiles back together.

export const MANDELBROT_MODULE_URL = new URL('./modules/mandelbrot.wasm', import.meta.url)

export interface View {
  /** Complex coordinate of the image's top-left pixel. */
  x0: number
  y0: number
  /** Complex distance between neighbouring pixels. */
  step: number
  maxIterations: number
}

export interface Tile { index: number, px: number, py: number, width: number, height: number, input: Uint8Array }

/** The 36-byte input of one tile (layout in wasm/mandelbrot.ts). */
export function encodeTileInput (x0: number, y0: number, step: number, width: number, height: number, maxIterations: number): Uint8Array {
  const v = new DataView(new ArrayBuffer(36))
  v.setFloat64(0, x0, true)
  v.setFloat64(8, y0, true)
  v.setFloat64(16, step, true)
  v.setUint32(24, width, true)
  v.setUint32(28, height, true)
  v.setUint32(32, maxIterations, true)
  return new Uint8Array(v.buffer)
}

/** Tiles of at most tileSize x tileSize pixels covering a width x height image, row by row. */
export function planTiles (width: number, height: number, tileSize: number, view: View): Tile[] {
  const tiles: Tile[] = []
  for (let py = 0; py < height; py += tileSize) {
    for (let px = 0; px < width; px += tileSize) {
      const w = Math.min(tileSize, width - px)
      const h = Math.min(tileSize, height - py)
      tiles.push({ index: tiles.length, px, py, width: w, height: h, input: encodeTileInput(view.x0 + px * view.step, view.y0 + py * view.step, view.step, w, h, view.maxIterations) })
    }
  }
  return tiles
}

/** Copies each tile's RGBA output into one width x height RGBA image. */
export function stitchTiles (width: number, height: number, tiles: Array<{ tile: Tile, rgba: Uint8Array }>): Uint8Array {
  const image = new Uint8Array(width * height * 4)
  for (const { tile, rgba } of tiles) {
    if (rgba.length !== tile.width * tile.height * 4) throw new RangeError(`tile ${tile.index} has ${rgba.length} bytes, expected ${tile.width * tile.height * 4}`)
    for (let row = 0; row < tile.height; row++) {
      image.set(rgba.subarray(row * tile.width * 4, (row + 1) * tile.width * 4), ((tile.py + row) * width + tile.px) * 4)
    }
  }
  return image
}
