// net/ depends on the core, never on jobs/ (issue 15): the task protocol and the libp2p job
// transport take their port types from src/core/scheduler/ports.ts. Every import under src/net,
// static, re-export or dynamic, is resolved against its file and must not land in src/jobs.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const jobs = join(root, 'src/jobs')

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Every module specifier a file names: `import ... from`, `export ... from`, `import('...')`, `import '...'`. */
export function specifiers (text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) out.push(m[1])
  return out
}

test('the specifier reader sees every form of import', () => {
  const text = "import a from '../jobs/a.js'\nimport type { B } from \"../jobs/b.js\"\nexport { c } from '../jobs/c.js'\nconst d = await import( '../jobs/d.js')\nimport '../jobs/e.js'\n"
  assert.equal(specifiers(text), ['../jobs/a.js', '../jobs/b.js', '../jobs/c.js', '../jobs/d.js', '../jobs/e.js'])
})

test('no file under src/net imports from src/jobs', () => {
  const files = sources(join(root, 'src/net'))
  assert.ok(files.length > 10, 'src/net was read')
  const bad: string[] = []
  for (const f of files) {
    for (const s of specifiers(readFileSync(f, 'utf8'))) {
      if (!s.startsWith('.')) continue
      const target = resolve(dirname(f), s)
      if (target === jobs || target.startsWith(jobs + '/')) bad.push(`${relative(root, f)} imports ${s}`)
    }
  }
  assert.equal(bad, [], 'net/ must take port types from src/core/scheduler/ports.ts')
})

test.run()
