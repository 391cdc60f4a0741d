// Whether dist/ was compiled from exactly the sources in this checkout. The build records the
// size and mtime of every file under src/ (and the tsconfigs) before it compiles; bin/dbc.js
// runs dist/ only when the same walk finds the same list now. Any edit, new or deleted file
// makes it stale, and a stale or half-written dist is never run (the stamp is written last).
import { readdirSync, statSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const STAMP_FILE = '.stamp.json'
const INPUTS = ['tsconfig.json', 'tsconfig.build.json']

/** size and mtime of every build input, keyed by path relative to root */
export function snapshotSources (root) {
  const out = {}
  const walk = (dir, rel) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) walk(join(dir, e.name), r)
      else {
        const s = statSync(join(dir, e.name))
        out[r] = [s.size, s.mtimeMs]
      }
    }
  }
  walk(join(root, 'src'), 'src')
  for (const f of INPUTS) {
    try { const s = statSync(join(root, f)); out[f] = [s.size, s.mtimeMs] } catch {}
  }
  return out
}

/** true when dist/ holds a finished build of the sources as they are now */
export function distIsFresh (root) {
  let stamp
  try { stamp = JSON.parse(readFileSync(join(root, 'dist', STAMP_FILE), 'utf8')) } catch { return false }
  let now
  try { now = snapshotSources(root) } catch { return false }
  const a = Object.keys(stamp.files ?? {})
  if (a.length !== Object.keys(now).length) return false
  for (const k of a) {
    const was = stamp.files[k]
    const is = now[k]
    if (is === undefined || is[0] !== was[0] || is[1] !== was[1]) return false
  }
  return true
}
