// `dbc node start`'s stop signals (src/node/drain-options.ts signalAction): the first drains, the
// second stops at once, a third exits without waiting (review17 L2: once the CLI handles SIGINT,
// Node's default exit no longer ends a stop that hangs).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { signalAction } from '../../../src/node/drain-options.js'

test('first drains, second stops at once, third and later exit', () => {
  assert.equal([1, 2, 3, 4].map(signalAction), ['drain', 'now', 'exit', 'exit'])
})

test.run()
