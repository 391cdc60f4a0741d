// bin/dbc.js runs dist/ in a clone only when it is a finished build of exactly these sources.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, utimesSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// @ts-expect-error plain JavaScript beside bin/dbc.js (no types: it runs before any build)
import { snapshotSources, distIsFresh, STAMP_FILE } from '../../../bin/dist-stamp.js'

function fixture (): string {
  const root = mkdtempSync(join(tmpdir(), 'dbc-stamp-'))
  mkdirSync(join(root, 'src/cli'), { recursive: true })
  writeFileSync(join(root, 'src/cli/main.ts'), 'export {}\n')
  writeFileSync(join(root, 'src/a.wasm'), 'x')
  writeFileSync(join(root, 'tsconfig.json'), '{}')
  mkdirSync(join(root, 'dist'))
  return root
}
const stamp = (root: string): void => { writeFileSync(join(root, 'dist', STAMP_FILE), JSON.stringify({ files: snapshotSources(root) })) }

test('no stamp (never built, or a build under way or failed): not fresh', () => {
  const root = fixture()
  assert.is(distIsFresh(root), false)
  stamp(root)
  assert.is(distIsFresh(root), true)
  rmSync(root, { recursive: true })
})

test('an edited, added or deleted source makes dist stale', () => {
  const root = fixture()
  stamp(root)
  const f = join(root, 'src/cli/main.ts')
  const t = statSync(f).mtime
  utimesSync(f, t, new Date(t.getTime() + 1000))
  assert.is(distIsFresh(root), false, 'mtime changed')
  stamp(root)
  writeFileSync(join(root, 'src/cli/new.ts'), '')
  assert.is(distIsFresh(root), false, 'file added')
  stamp(root)
  rmSync(join(root, 'src/a.wasm'))
  assert.is(distIsFresh(root), false, 'file deleted')
  stamp(root)
  writeFileSync(join(root, 'tsconfig.json'), '{ }')
  assert.is(distIsFresh(root), false, 'tsconfig changed')
  rmSync(root, { recursive: true })
})

test('a damaged stamp is not fresh', () => {
  const root = fixture()
  writeFileSync(join(root, 'dist', STAMP_FILE), '{')
  assert.is(distIsFresh(root), false)
  rmSync(root, { recursive: true })
})

test.run()
