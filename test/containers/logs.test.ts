// The docker executor keeps what a container wrote to stderr for the task's log (its tail), and a
// failed container's log travels on its error (the result carries it back: TaskResult.stderr).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DockerExecutor } from '../../src/compute/executors/docker.js'
import { taskLogOf } from '../../src/compute/executors/output-tail.js'
import { encodeContainerCode } from '../../src/core/compute/container-code.js'
import { testEngine } from './engine.js'

const workDir = mkdtempSync(join(tmpdir(), 'dbc-ctr-logs-'))

test('a failed container\'s stderr is on its error, whole, with its size', async () => {
  const engine = await testEngine()
  const ex = new DockerExecutor({ owner: randomBytes(8).toString('hex'), workDir, settings: { socket: engine.socket, images: { busybox: { image: engine.image, digest: engine.digest } } } })
  try {
    let failed: unknown
    try {
      await ex.run({ taskId: 't-fail', code: encodeContainerCode({ image: 'busybox', network: false }), entry: 'fail', input: new Uint8Array(0), timeoutMs: 60_000, memoryLimitMib: 64, maxOutputBytes: 1 << 20, cpus: 1 })
    } catch (err) { failed = err }
    assert.is((failed as { code?: string }).code, 'TASK_EXIT_CODE')
    const log = taskLogOf(failed)
    assert.is(new TextDecoder().decode(log?.stderr), 'failing on purpose\n')
    assert.is(log?.stderrBytes, 19)
  } finally {
    await ex.close()
  }
})

test.after(() => { rmSync(workDir, { recursive: true, force: true }) })
test.run()
