// src/core must stay sans-IO: no node:* modules, no libp2p, no clock, no Math.random, no
// timers, and no imports from the project outside src/core except the generated wire code.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { repoRoot } from '../../scripts/gen/index.js'

const coreDir = join(repoRoot, 'src/core')
function files (dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}
const forbidden: Array<[RegExp, string]> = [
  [/from\s+['"]node:/, 'imports a node: module'],
  [/from\s+['"](fs|os|net|path|crypto|child_process|worker_threads)['"]/, 'imports a Node built-in'],
  [/from\s+['"](libp2p|@libp2p\/|@chainsafe\/|viem|@ethereumjs\/)/, 'imports an I/O library'],
  [/\bDate\.now\s*\(/, 'reads the clock (pass `now` in)'],
  [/\bnew Date\s*\(\s*\)/, 'reads the clock (pass `now` in)'],
  [/\bperformance\.now\s*\(/, 'reads the clock (pass `now` in)'],
  [/\bMath\.random\s*\(/, 'uses Math.random (take an Rng)'],
  [/\b(setTimeout|setInterval|setImmediate)\s*\(/, 'sets a timer (return nextTimeout instead)'],
  [/\bprocess\./, 'touches process'],
  [/\bBuffer\./, 'uses Buffer (use Uint8Array)']
]

test('src/core is free of I/O, clocks, randomness and outside imports', () => {
  const problems: string[] = []
  for (const f of files(coreDir)) {
    const src = readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '')
    for (const [re, why] of forbidden) if (re.test(src)) problems.push(`${relative(repoRoot, f)} ${why}`)
    for (const m of src.matchAll(/from\s+['"](\.[^'"]+)['"]/g)) {
      const target = resolve(dirname(f), m[1])
      const rel = relative(repoRoot, target)
      if (!rel.startsWith('src/core') && !rel.startsWith('src/wire/gen')) problems.push(`${relative(repoRoot, f)} imports ${m[1]} (outside src/core)`)
    }
  }
  assert.equal(problems, [], problems.join('\n'))
})
test.run()
