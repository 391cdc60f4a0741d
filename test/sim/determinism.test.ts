// Same seed, same result: runs scenarios twice (fresh worlds) and compares the JSON,
// leaving out only the wall-clock/memory section. A different seed must differ.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SCENARIOS } from '../../simulator/scenarios/index.js'
import type { ScenarioResult } from '../../simulator/scenarios/types.js'

const stable = (r: ScenarioResult): string => JSON.stringify({ ...r, perf: undefined })

for (const name of Object.keys(SCENARIOS)) {
  test(`${name}: same seed gives identical JSON, another seed does not`, async () => {
    const sc = SCENARIOS[name]
    const opts = { nodes: sc.smallNodes, seed: 7, count: sc.smallCount, extra: sc.smallExtra }
    const a = stable(await sc.run(opts))
    const b = stable(await sc.run(opts))
    assert.is(a, b)
    const c = stable(await sc.run({ ...opts, seed: 8 }))
    assert.is.not(a, c)
  })
}

test.run()
