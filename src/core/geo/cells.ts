// A hierarchical lat/lon grid. At level L a cell spans 180/2^L degrees on each side:
// 2^L rows of latitude and 2^(L+1) columns of longitude (columns wrap at the antimeridian).
// Cell ids look like "r5:12:40" (level 5, row 12, column 40). Capability records are indexed
// under their cell at a few levels, so a query can search near first and widen ring by ring.

import { isValidLatLon, type LatLon } from './location.js'

export const MAX_CELL_LEVEL = 12

export interface GeoCell {
  level: number
  row: number
  col: number
}

export function cellSizeDeg (level: number): number {
  return 180 / 2 ** level
}

function rowsAt (level: number): number { return 2 ** level }
function colsAt (level: number): number { return 2 ** (level + 1) }

function checkLevel (level: number): void {
  if (!Number.isInteger(level) || level < 0 || level > MAX_CELL_LEVEL) throw new RangeError(`cell level ${level} is outside 0..${MAX_CELL_LEVEL}`)
}

export function cellOf (lat: number, lon: number, level: number): GeoCell {
  checkLevel(level)
  if (!isValidLatLon(lat, lon)) throw new RangeError(`location ${lat},${lon} is not a valid latitude,longitude`)
  const size = cellSizeDeg(level)
  const row = Math.min(rowsAt(level) - 1, Math.floor((lat + 90) / size))
  const col = Math.min(colsAt(level) - 1, Math.floor((lon + 180) / size))
  return { level, row, col }
}

export function cellId (c: GeoCell): string {
  return `r${c.level}:${c.row}:${c.col}`
}

export function cellIdOf (lat: number, lon: number, level: number): string {
  return cellId(cellOf(lat, lon, level))
}

/** Parses a cell id; undefined when it is not a valid id. */
export function parseCellId (id: string): GeoCell | undefined {
  const m = /^r(\d{1,2}):(\d{1,5}):(\d{1,6})$/.exec(id)
  if (m == null) return undefined
  const level = Number(m[1]); const row = Number(m[2]); const col = Number(m[3])
  if (level > MAX_CELL_LEVEL || row >= rowsAt(level) || col >= colsAt(level)) return undefined
  return { level, row, col }
}

/** Centre of a cell. */
export function cellCentre (c: GeoCell): LatLon {
  const size = cellSizeDeg(c.level)
  return { lat: -90 + (c.row + 0.5) * size, lon: -180 + (c.col + 0.5) * size }
}

/** The cell one level up that contains `c`. */
export function parentCell (c: GeoCell): GeoCell | undefined {
  if (c.level === 0) return undefined
  return { level: c.level - 1, row: c.row >> 1, col: c.col >> 1 }
}

/**
 * The cells at Chebyshev ring distance exactly `ring` from `center` (ring 0 is the cell
 * itself), row-major. Rows stop at the poles; columns wrap, so a ring never lists a cell twice.
 */
export function ringsAround (center: GeoCell | string, ring: number): string[] {
  const c = typeof center === 'string' ? parseCellId(center) : center
  if (c === undefined) throw new RangeError(`"${String(center)}" is not a geo cell id (expected e.g. "r5:12:40")`)
  if (!Number.isInteger(ring) || ring < 0) throw new RangeError(`ring ${ring} must be a non-negative integer`)
  if (ring === 0) return [cellId(c)]
  const rows = rowsAt(c.level); const cols = colsAt(c.level)
  const seen = new Set<string>()
  const out: string[] = []
  for (let dr = -ring; dr <= ring; dr++) {
    const row = c.row + dr
    if (row < 0 || row >= rows) continue
    const edgeRow = Math.abs(dr) === ring
    for (let dc = -ring; dc <= ring; dc++) {
      if (!edgeRow && Math.abs(dc) < ring) continue
      const col = (((c.col + dc) % cols) + cols) % cols
      // On inner rows only the columns exactly `ring` away (after wrapping) belong to the ring.
      if (!edgeRow && wrapDistance(col, c.col, cols) !== ring) continue
      const id = `r${c.level}:${row}:${col}`
      if (!seen.has(id)) { seen.add(id); out.push(id) }
    }
  }
  return out
}

function wrapDistance (a: number, b: number, n: number): number {
  const d = Math.abs(a - b) % n
  return Math.min(d, n - d)
}

/** Chebyshev distance between two cells of the same level (column distance wraps). */
export function cellRingDistance (a: GeoCell, b: GeoCell): number {
  if (a.level !== b.level) throw new RangeError('cells of different levels have no ring distance')
  return Math.max(Math.abs(a.row - b.row), wrapDistance(a.col, b.col, colsAt(a.level)))
}
