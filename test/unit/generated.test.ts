// Generated code must match its sources: regenerate into a temp dir and compare.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSteps, repoRoot } from '../../scripts/gen/index.js'

const steps = await loadSteps()
for (const step of steps) {
  test(`generated ${step.name} output is fresh (run \`npm run generate\` if this fails)`, async () => {
    const out = mkdtempSync(join(tmpdir(), `dbc-gen-${step.name}-`))
    try {
      await step.generate(out)
      for (const rel of step.outputs) {
        const fresh = readFileSync(join(out, rel))
        const committed = readFileSync(join(repoRoot, rel))
        assert.ok(fresh.equals(committed), `${rel} is stale: run \`npm run generate\` and commit it`)
      }
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })
}
test.run()
