// The docker executor against a real engine (Podman's Docker-compatible service, set up by
// scripts/setup-podman.sh): limits, user and file system inside the container, the time limit,
// the output cap while streaming, the network rule, the image list, and removal on every path.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer } from 'node:http'
import { networkInterfaces } from 'node:os'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DockerExecutor, type ContainerSettings } from '../../src/compute/executors/docker.js'
import { encodeContainerCode } from '../../src/core/compute/container-code.js'
import type { ExecutionRequest } from '../../src/compute/executors/types.js'
import { containersWithLabel, eventually, podman, testEngine, type TestEngine } from './engine.js'

const workDir = mkdtempSync(join(tmpdir(), 'dbc-ctr-test-'))
let engine: TestEngine
const owners: string[] = []

function executor (settings: Partial<ContainerSettings> = {}, owner = randomBytes(8).toString('hex')): { ex: DockerExecutor, owner: string } {
  owners.push(owner)
  const ex = new DockerExecutor({ owner, workDir, settings: { socket: engine.socket, images: { busybox: { image: engine.image, digest: engine.digest } }, ...settings } })
  return { ex, owner }
}

function task (entry: string, over: Partial<ExecutionRequest> & { network?: boolean, image?: string } = {}): ExecutionRequest {
  const { network, image, ...rest } = over
  return { taskId: `t-${entry}`, code: encodeContainerCode({ image: image ?? 'busybox', network: network ?? false }), entry, input: new Uint8Array(0), timeoutMs: 30_000, memoryLimitMib: 64, maxOutputBytes: 1 << 20, cpus: 1, ...rest }
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b)

async function failure (p: Promise<unknown>): Promise<{ code: string, message: string, data?: Record<string, number> }> {
  try {
    await p
  } catch (err) {
    return err as { code: string, message: string, data?: Record<string, number> }
  }
  throw new Error('the task succeeded; it should have failed')
}

test.before(async () => { engine = await testEngine() })

test('a task runs as nobody with a read-only root, a writable /task, its input, and CPU, memory and pids limits', async () => {
  const { ex, owner } = executor({ pidsLimit: 64 })
  assert.equal(await ex.availability(), { available: true })
  const r = await ex.run(task('whoami', { memoryLimitMib: 96, cpus: 2 }))
  const out = text(r.output)
  assert.match(out, /^uid=65534 gid=65534$/m)
  assert.match(out, /^root: read-only$/m)
  assert.match(out, /^task: writable$/m)
  assert.match(out, new RegExp(`^memory.limit=${96 * 1024 * 1024}$`, 'm'))
  assert.match(out, /^pids.max=64$/m)
  assert.match(out, /^cpu=200000\/100000$/m) // 2 CPUs: a quota of twice the period
  const sq = await ex.run(task('square', { input: new TextEncoder().encode('12') }))
  assert.is(text(sq.output), '144\n')
  assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])
})

test('a container that loops is killed at its time limit and removed', async () => {
  const { ex, owner } = executor()
  const e = await failure(ex.run(task('loop', { timeoutMs: 2000 })))
  assert.is(e.code, 'TASK_TIMEOUT', e.message)
  assert.is(e.data?.exitCode, 137) // killed, not ended by itself
  assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])
})

test('1 GiB written to stdout is cut at the cap while it streams', async () => {
  const { ex, owner } = executor()
  const cap = 4 * 1024 * 1024
  const e = await failure(ex.run(task('flood', { maxOutputBytes: cap })))
  assert.is(e.code, 'TASK_OUTPUT_TOO_LARGE', e.message)
  const seen = e.data?.stdoutBytes ?? 0
  // stopped right after the cap: had it been read to the end and checked after, this would be 1 GiB
  assert.ok(seen > cap, `saw ${seen} bytes`)
  assert.ok(seen < 256 * 1024 * 1024, `read ${seen} bytes before stopping`)
  assert.is(e.data?.exitCode, 137)
  assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])
})

test('memory and process limits hold', async () => {
  const { ex } = executor({ pidsLimit: 32 })
  const mem = await failure(ex.run(task('membomb', { memoryLimitMib: 48 })))
  assert.is(mem.code, 'TASK_MEMORY_LIMIT', mem.message)
  const fork = await failure(ex.run(task('forkbomb')))
  assert.is(fork.code, 'TASK_EXIT_CODE', fork.message)
  assert.match(fork.message, /can't fork/)
})

/** A host address a container with a network could reach (not loopback, not Podman's bridge). */
function hostAddress (): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('10.88.')) return a.address
  }
  throw new Error('this machine has no non-loopback IPv4 address to try the network with')
}

test('no network unless the task asks and the provider allows', async () => {
  let hits = 0
  const server = createServer((_req, res) => { hits++; res.end('hello') })
  await new Promise<void>(resolve => server.listen(0, '0.0.0.0', resolve))
  const target = `${hostAddress()}:${(server.address() as { port: number }).port}`
  try {
    const input = new TextEncoder().encode(target)
    const { ex, owner } = executor()
    const none = text((await ex.run(task('net', { input }))).output)
    assert.match(none, /^interfaces: lo $/m)
    assert.match(none, /^unreachable: .*Network is unreachable/m)
    assert.is(hits, 0)
    // asked, but this provider gives none: refused before any container exists
    const refused = await failure(ex.run(task('net', { input, network: true })))
    assert.is(refused.code, 'TASK_NETWORK_NOT_ALLOWED', refused.message)
    assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])
    // asked and allowed: a bridge network
    const open = executor({ network: true }).ex
    const reached = text((await open.run(task('net', { input, network: true }))).output)
    assert.match(reached, /^interfaces: eth0 lo $/m)
    assert.match(reached, new RegExp(`^reached ${target.replaceAll('.', '\\.')}: HTTP/1\\.`, 'm'))
    assert.is(hits, 1)
  } finally {
    server.close()
  }
})

test('only the provider\'s images run, and only with the pinned digest', async () => {
  const { ex, owner } = executor()
  const other = await failure(ex.run(task('whoami', { image: 'docker.io/library/alpine:3' })))
  assert.is(other.code, 'TASK_IMAGE_NOT_ALLOWED')
  assert.match(other.message, /not on this provider's image list \(it runs: busybox\)/)
  // listed, but the image here is not the one pinned
  const wrong = executor({ images: { busybox: { image: engine.image, digest: `sha256:${'0'.repeat(64)}` } } }).ex
  const e = await failure(wrong.run(task('whoami')))
  assert.is(e.code, 'TASK_IMAGE_NOT_ALLOWED')
  assert.match(e.message, /has digest sha256:[0-9a-f]{64}, not the sha256:0{64}/)
  const a = await wrong.availability()
  assert.is(a.available, false)
  assert.match(a.reason ?? '', /none of the listed images can run/)
  // pinned by its image id works as well as by its manifest digest
  const byId = executor({ images: { busybox: { image: engine.image, digest: engine.id } } }).ex
  assert.is(text((await byId.run(task('square', { input: new TextEncoder().encode('3') }))).output), '9\n')
  assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])
})

test('cancel and provider shutdown stop and remove a running container', async () => {
  const { ex, owner } = executor()
  const ac = new AbortController()
  const running = failure(ex.run(task('loop'), { signal: ac.signal }))
  assert.ok(await eventually(async () => (await containersWithLabel(`dbc.owner=${owner}`)).length === 1), 'the container never appeared')
  ac.abort()
  assert.is((await running).code, 'TASK_CANCELLED')
  assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])

  const stopping = failure(ex.run(task('loop', { taskId: 't-loop-2' })))
  assert.ok(await eventually(async () => (await containersWithLabel(`dbc.owner=${owner}`)).length === 1), 'the container never appeared')
  await ex.close()
  assert.is((await stopping).code, 'TASK_CANCELLED')
  assert.equal(await containersWithLabel(`dbc.owner=${owner}`), [])
  assert.is((await failure(ex.run(task('whoami')))).code, 'TASK_CANCELLED') // closed: no new containers
})

test('start() removes the containers an earlier run of the same provider left, and no one else\'s', async () => {
  const mine = randomBytes(8).toString('hex')
  const theirs = randomBytes(8).toString('hex')
  owners.push(mine, theirs)
  for (const o of [mine, mine, theirs]) await podman(['create', '--label', `dbc.owner=${o}`, engine.image])
  assert.is((await containersWithLabel(`dbc.owner=${mine}`)).length, 2)
  const { ex } = executor({}, mine)
  assert.equal(await ex.start(), { removed: 2 })
  assert.equal(await containersWithLabel(`dbc.owner=${mine}`), [])
  assert.is((await containersWithLabel(`dbc.owner=${theirs}`)).length, 1)
})

test.after(async () => {
  for (const o of owners) {
    const left = await containersWithLabel(`dbc.owner=${o}`).catch(() => [])
    if (left.length > 0) await podman(['rm', '-f', ...left]).catch(() => {})
  }
  rmSync(workDir, { recursive: true, force: true })
})

test.run()
