// docs/openapi.json: valid OpenAPI (checked by a maintained validator), describing every route
// the daemon registers and every route the CLI and the dashboard page call. (Its freshness
// against src/api/routes.ts is checked with the other generated files: test/unit/generated.test.ts.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import SwaggerParser from '@apidevtools/swagger-parser'
import { repoRoot } from '../../../scripts/gen/index.js'
import { routes } from '../../../src/api/routes.js'

const doc = JSON.parse(readFileSync(join(repoRoot, 'docs/openapi.json'), 'utf8')) as { openapi: string, paths: Record<string, Record<string, { operationId: string }>> }

function filesUnder (dir: string, exts: string[]): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, exts))
    else if (exts.some(e => name.endsWith(e))) out.push(p)
  }
  return out
}

/** '/v1/jobs/{id}' -> a pattern matching '/v1/jobs/X'. */
const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map(m => ({
  method: m.toUpperCase(),
  path,
  pattern: new RegExp('^' + path.replace(/\{[^}]+\}/g, '[^/]+') + '$')
})))

/**
 * The /v1 paths a source file names in string or template literals: a `${...}` that is a whole
 * segment becomes a parameter, one glued to the end (a query string) and anything after '?' go.
 */
function pathsNamedIn (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/['`](\/v1\/[^'`\s]*)['`]/g)) {
    const p = m[1]
      .replace(/(^|\/)\$\{[^}]*\}(?=\/|$|\?)/g, '$1X')
      .replace(/\$\{[^}]*\}/g, '')
      .split('?')[0]
      .replace(/\/$/, '')
    out.push(p)
  }
  return out
}

test('docs/openapi.json is a valid OpenAPI 3.1 document', async () => {
  assert.is(doc.openapi, '3.1.0')
  // the validator dereferences in place: give it a copy
  await SwaggerParser.validate(structuredClone(doc) as any)
  const ids = documented.map(d => doc.paths[d.path][d.method.toLowerCase()].operationId)
  assert.is(new Set(ids).size, ids.length, 'operation ids are unique')
})

test('a request body is required unless every field is optional (the server reads a missing object body as {}: review17)', () => {
  const body = (path: string): { required?: boolean } | undefined => (doc.paths[path]?.post as unknown as { requestBody?: { required?: boolean } } | undefined)?.requestBody
  assert.is(body('/v1/stop')?.required, false, 'POST /v1/stop with no body drains by default (old CLIs send none)')
  assert.is(body('/v1/ping')?.required, true, 'ping needs its peer')
})

test('a document with a broken route fails the validator (the check can fail)', async () => {
  const broken = structuredClone(doc) as any
  broken.paths['/v1/jobs/{id}'].get.parameters[0].required = false
  try {
    await SwaggerParser.validate(broken)
    assert.unreachable('an optional path parameter passed')
  } catch (err) {
    assert.match((err as Error).message, /v1~1jobs~1\{id\}|required/)
  }
})

test('every route the CLI and the dashboard page call is documented', () => {
  const sources = [...filesUnder(join(repoRoot, 'src/cli'), ['.ts']), ...filesUnder(join(repoRoot, 'src/dashboard/web'), ['.js', '.mjs'])]
  const called = new Map<string, string>()
  for (const f of sources) for (const p of pathsNamedIn(f)) called.set(p, relative(repoRoot, f))
  assert.ok(called.size >= 20, `found only ${called.size} paths: is the scan broken?`)
  const missing = [...called].filter(([p]) => !documented.some(d => d.pattern.test(p)))
  assert.equal(missing, [], 'paths called but not in docs/openapi.json (add them to src/api/routes.ts, then `npm run generate`)')
  assert.ok(called.has('/v1/jobs/X/explain'), 'a template literal with a glued query suffix is read')
})

test('every route registered in src/ has a contract in src/api/routes.ts', () => {
  const keys = new Set(Object.keys(routes))
  const registered: string[] = []
  for (const f of filesUnder(join(repoRoot, 'src'), ['.ts'])) {
    const text = readFileSync(f, 'utf8')
    for (const m of text.matchAll(/\.(?:route|streamRoute)\(\s*'(GET|POST|DELETE)',\s*'([^']+)'/g)) registered.push(`${m[1]} ${m[2]}`)
    for (const m of text.matchAll(/\.publicRoute\(\s*'([^']+)'/g)) registered.push(`GET ${m[1]}`)
  }
  assert.ok(registered.length >= 40, `found only ${registered.length} registrations: is the scan broken?`)
  assert.equal(registered.filter(k => !keys.has(k)), [], 'registered routes without a contract')
  const documentedKeys = new Set(documented.map(d => `${d.method} ${d.path.replace(/\{([^}]+)\}/g, ':$1')}`))
  assert.equal([...keys].filter(k => !documentedKeys.has(k)), [], 'contracts missing from docs/openapi.json: run `npm run generate`')
})

test.run()
