// The job runner is a thin pump around the core's job session (issue 15): its decisions live in
// src/core/scheduler, so the file stays small. This fails when decisions creep back into it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'

test('src/jobs/runner.ts stays under 250 lines', () => {
  const lines = readFileSync(new URL('../../../src/jobs/runner.ts', import.meta.url), 'utf8').split('\n').length - 1
  assert.ok(lines < 250, `src/jobs/runner.ts has ${lines} lines: move what is not pumping into src/core/scheduler or a runner-*.ts file`)
})

test.run()
