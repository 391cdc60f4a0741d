// Long variant: every scenario at its default size (what `npm run sim -- --scenario X`
// runs), checking its own invariants.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SCENARIOS } from '../../simulator/scenarios/index.js'

for (const [name, sc] of Object.entries(SCENARIOS)) {
  test(`${name} at ${sc.defaultNodes} nodes keeps its invariants`, async () => {
    const r = await sc.run({ nodes: sc.defaultNodes, seed: 5 })
    for (const inv of r.invariants) assert.ok(inv.ok, `${name}: ${inv.name}: ${inv.detail}`)
  })
}

test.run()
