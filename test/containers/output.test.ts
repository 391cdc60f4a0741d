// A container task's output on a real engine (Podman) is read from the engine's log of the
// container once it has exited: byte for byte (binary, \r, no final newline), a dense one of a
// line per byte up to the cap, an empty one after one run; the container goes, and its log with it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import Docker from 'dockerode'
import { DockerExecutor } from '../../src/compute/executors/docker.js'
import { encodeContainerCode } from '../../src/core/compute/container-code.js'
import type { ExecutionRequest } from '../../src/compute/executors/types.js'
import { containersWithLabel, podman, testEngine } from './engine.js'

const workDir = mkdtempSync(join(tmpdir(), 'dbc-ctr-out-'))

const echo = (input: Uint8Array, over: Partial<ExecutionRequest> = {}): ExecutionRequest =>
  ({ taskId: 't-echo', code: encodeContainerCode({ image: 'busybox', network: false }), entry: 'echo', input, timeoutMs: 60_000, memoryLimitMib: 64, maxOutputBytes: 1 << 20, cpus: 1, ...over })

test('the output is the container\'s log, byte for byte; one run each; nothing of it left on the engine', async () => {
  const engine = await testEngine()
  const owner = randomBytes(8).toString('hex')
  // the engine client, watched: which containers the executor creates
  const client = new Docker({ socketPath: engine.socket.replace(/^unix:\/\//, '') })
  const ids: string[] = []
  const create = client.createContainer.bind(client)
  client.createContainer = (async (o: Docker.ContainerCreateOptions) => { const c = await create(o); ids.push(c.id); return c }) as typeof client.createContainer
  const ex = new DockerExecutor({ engine: client, owner, workDir, settings: { socket: engine.socket, images: { busybox: { image: engine.image, digest: engine.digest } } } })
  try {
    const binary = new Uint8Array([...randomBytes(20_000), 13, 10, 13, 0, 255, 10, 10, 120])
    assert.ok(Buffer.from((await ex.run(echo(binary))).output).equals(Buffer.from(binary)), 'binary output, byte for byte')
    // the cap's worth of one-byte lines (~46 bytes of log each): within the default bound at this cap
    // (2 x cap + 16 MiB); at a large cap such output fails TASK_OUTPUT_TOO_LARGE, never a wrong answer
    // (Podman 4.3's follow of an exited container's log ended 85 KB into 9.4 MB of such lines)
    const dense = new Uint8Array(256 << 10).fill(10)
    assert.ok(Buffer.from((await ex.run(echo(dense, { maxOutputBytes: dense.length }))).output).equals(Buffer.from(dense)), 'a line per byte, up to the cap')
    assert.is((await ex.run(echo(new Uint8Array(0)))).output.length, 0)
    assert.is(ids.length, 3, 'one container a task: a program that prints nothing is not run again')
    assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])
    // the log lives in the container's own storage folder on the engine, removed with it
    const root = (await podman(['info', '--format', '{{.Store.GraphRoot}}'])).trim()
    for (const id of ids) assert.not.ok(existsSync(join(root, 'overlay-containers', id)), `the engine kept ${id}'s folder (its log)`)
  } finally {
    await ex.close()
  }
})

test('one byte past the cap in the log is an error, not an answer cut to the cap', async () => {
  const engine = await testEngine()
  const ex = new DockerExecutor({ owner: randomBytes(8).toString('hex'), workDir, settings: { socket: engine.socket, images: { busybox: { image: engine.image, digest: engine.digest } } } })
  try {
    const err = await ex.run(echo(new Uint8Array(1001).fill(65), { maxOutputBytes: 1000 })).then(() => undefined, (e: Error & { code: string }) => e)
    assert.is(err?.code, 'TASK_OUTPUT_TOO_LARGE')
  } finally {
    await ex.close()
  }
})

test.after(() => { rmSync(workDir, { recursive: true, force: true }) })
test.run()
