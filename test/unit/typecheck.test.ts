// The whole project type-checks under the strict tsconfig (tsx runs the sources without
// checking types, so this is where a type error fails the suite).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '../../scripts/gen/index.js'

test('tsc --noEmit reports no error', () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.json'), '--noEmit'], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 })
  const errors = (r.stdout + r.stderr).split('\n').filter(l => l.includes('error TS'))
  assert.equal(errors, [], errors.slice(0, 20).join('\n'))
  assert.is(r.status, 0, r.stdout + r.stderr)
})

test.run()
