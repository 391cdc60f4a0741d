// The docker executor's pure parts (no engine): the container it asks for, GPU device requests,
// the streaming demultiplexer and its cap, the task's container code, the engine endpoint, the
// image list; and how it reports a missing engine. The real engine is in test/containers/.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { DockerExecutor, demuxDockerStream, StreamDemuxer } from '../../../src/compute/executors/docker.js'
import { containerCreateOptions, gpuDeviceRequests, type ContainerPlan } from '../../../src/compute/executors/docker/spec.js'
import { resolveEndpoint } from '../../../src/compute/executors/docker/settings.js'
import { digestsOf, findAllowedImage } from '../../../src/compute/executors/docker/images.js'
import { encodeContainerCode, parseContainerCode, ContainerCodeError } from '../../../src/core/compute/container-code.js'
import type { ExecutionRequest } from '../../../src/compute/executors/types.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-docker-'))
const digest = `sha256:${'a'.repeat(64)}`
const base: ExecutionRequest = { taskId: 'd1', code: encodeContainerCode({ image: 'bb', network: false }), entry: 'square', input: new TextEncoder().encode('hi'), timeoutMs: 5000, memoryLimitMib: 64, maxOutputBytes: 1 << 20 }

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) { return (err as { code: string }).code }
  throw new Error('it succeeded')
}

test('no engine: reported clearly, and runs are refused', async () => {
  const ex = new DockerExecutor({ socketPath: join(dir, 'docker.sock'), settings: { images: { bb: { image: 'x', digest } } } })
  const a = await ex.availability()
  assert.is(a.available, false)
  assert.match(a.reason ?? '', /no Docker Engine socket at .*docker\.sock/)
  assert.is(await codeOf(ex.run(base)), 'EXECUTOR_UNAVAILABLE')
  const off = new DockerExecutor({ enabled: false })
  assert.match((await off.availability()).reason ?? '', /off in the provider policy/)
  assert.is(await codeOf(off.run(base)), 'EXECUTOR_DISABLED')
})

test('images not listed, networks not allowed, malformed code and entries are refused before any engine call', async () => {
  const ex = new DockerExecutor({ socketPath: join(dir, 'none.sock'), settings: { images: { bb: { image: 'x', digest } } } })
  assert.is(await codeOf(ex.run({ ...base, code: encodeContainerCode({ image: 'other', network: false }) })), 'TASK_IMAGE_NOT_ALLOWED')
  assert.is(await codeOf(ex.run({ ...base, code: encodeContainerCode({ image: 'bb', network: true }) })), 'TASK_NETWORK_NOT_ALLOWED')
  assert.is(await codeOf(ex.run({ ...base, code: new TextEncoder().encode('{"image":"bb","cmd":["sh"]}') })), 'TASK_BAD_MODULE')
  assert.is(await codeOf(ex.run({ ...base, entry: 'a\u0000b' })), 'TASK_BAD_MODULE')
  assert.is(await codeOf(ex.run({ ...base, entry: 'x'.repeat(257) })), 'TASK_BAD_MODULE')
})

const plan: ContainerPlan = { taskId: 't1', imageId: digest, entry: 'square', inputPath: '/data/ctr-1/input', memoryLimitMib: 128, cpus: 2, gpuIndexes: [], network: false, owner: 'ab12' }

test('the container: limits from the task, read-only root, writable /task, nobody, no network, labels, no command', () => {
  const o = containerCreateOptions(plan)
  const h = o.HostConfig!
  assert.is(o.Image, digest)
  assert.is(o.Cmd, undefined) // the image's own program runs
  assert.is(o.Entrypoint, undefined)
  assert.ok(o.Env!.includes('DBC_ENTRY=square'))
  assert.is(o.User, '65534:65534')
  assert.equal(o.Labels, { 'dbc.owner': 'ab12', 'dbc.task': 't1' })
  assert.is(h.Memory, 128 * 1024 * 1024)
  assert.is(h.MemorySwap, h.Memory)
  assert.is(h.NanoCpus, 2e9)
  assert.is(h.PidsLimit, 256)
  assert.is(h.ReadonlyRootfs, true)
  assert.match(h.Tmpfs!['/task'], /size=128m/)
  assert.equal(h.Binds, ['/data/ctr-1/input:/task/input:ro'])
  assert.is(h.NetworkMode, 'none')
  assert.is(o.NetworkDisabled, true)
  assert.equal(h.CapDrop, ['ALL'])
  assert.ok(h.SecurityOpt!.includes('no-new-privileges'))
  assert.is(h.Privileged, false)
  assert.is(h.DeviceRequests, undefined)
  const custom = containerCreateOptions({ ...plan, network: true }, { pidsLimit: 64, user: '1000:1000' })
  assert.is(custom.HostConfig!.NetworkMode, 'bridge')
  assert.is(custom.NetworkDisabled, false)
  assert.is(custom.HostConfig!.PidsLimit, 64)
  assert.is(custom.User, '1000:1000')
})

test('GPUs of the slot pass through as device requests (Docker) or CDI devices (Podman)', () => {
  assert.equal(gpuDeviceRequests([], 'nvidia'), {})
  assert.equal(gpuDeviceRequests([0, 2], 'nvidia'), { DeviceRequests: [{ Driver: 'nvidia', Count: 0, DeviceIDs: ['0', '2'], Capabilities: [['gpu']], Options: {} }] })
  assert.equal(gpuDeviceRequests([1], 'cdi'), { Devices: [{ PathOnHost: 'nvidia.com/gpu=1', PathInContainer: '', CgroupPermissions: 'rwm' }] })
  const o = containerCreateOptions({ ...plan, gpuIndexes: [3] })
  assert.equal(o.HostConfig!.DeviceRequests![0].DeviceIDs, ['3'])
  assert.equal(containerCreateOptions({ ...plan, gpuIndexes: [3] }, { gpus: 'cdi' }).HostConfig!.Devices![0].PathOnHost, 'nvidia.com/gpu=3')
})

const frame = (stream: number, s: string | Uint8Array): Buffer => {
  const body = typeof s === 'string' ? Buffer.from(s) : Buffer.from(s)
  const h = Buffer.alloc(8); h[0] = stream; h.writeUInt32BE(body.length, 4)
  return Buffer.concat([h, body])
}

test('the stream is demultiplexed as it arrives, split anywhere', () => {
  const all = Buffer.concat([frame(1, 'hello '), frame(2, 'oops'), frame(1, 'world'), frame(2, '!')])
  for (const size of [1, 3, 8, 9, all.length]) {
    const d = new StreamDemuxer({ maxStdoutBytes: 100 })
    for (let i = 0; i < all.length; i += size) d.push(all.subarray(i, i + size))
    assert.is(new TextDecoder().decode(d.stdout()), 'hello world', `chunks of ${size}`)
    assert.is(d.stderrTail(), 'oops!')
  }
  assert.is(new TextDecoder().decode(demuxDockerStream(all)), 'hello world')
  const tail = new StreamDemuxer({ maxStdoutBytes: 1, stderrTailBytes: 4 })
  tail.push(frame(2, 'abcdefgh'))
  assert.is(tail.stderrTail(), 'efgh')
})

test('stdout past the cap calls onOverflow once and keeps nothing more', () => {
  let calls = 0
  const d = new StreamDemuxer({ maxStdoutBytes: 10, onOverflow: () => { calls++ } })
  d.push(frame(1, '12345678'))
  assert.is(calls, 0)
  d.push(frame(1, 'abc'))
  d.push(frame(1, new Uint8Array(1 << 20)))
  assert.is(calls, 1)
  assert.ok(d.overflowed)
  assert.is(new TextDecoder().decode(d.stdout()), '12345678')
  assert.is(d.stdoutBytes, 11 + (1 << 20))
})

test('container code: JSON or a plain name, strictly checked', () => {
  assert.equal(parseContainerCode(encodeContainerCode({ image: 'torch-cuda', network: true })), { image: 'torch-cuda', network: true })
  assert.equal(parseContainerCode(new TextEncoder().encode('localhost/x:1')), { image: 'localhost/x:1', network: false })
  const bad = (s: string | Uint8Array, why: RegExp): void => {
    assert.throws(() => parseContainerCode(typeof s === 'string' ? new TextEncoder().encode(s) : s), (e: Error) => e instanceof ContainerCodeError && why.test(e.message))
  }
  bad('', /names no image/)
  bad('{"image":"x","command":"sh"}', /unknown field "command"/)
  bad('{"image":"x","network":"yes"}', /must be true or false/)
  bad('{"image":"-rf /"}', /is not an image name/)
  bad('{"image":"x"', /not valid JSON/)
  bad('[1]', /is not an image name/)
  bad('{"image":' + '"' + 'a'.repeat(2000) + '"}', /at most 1024/)
  bad(new Uint8Array([0xff, 0xfe]), /not UTF-8/)
})

test('the engine: the config\'s socket, else DOCKER_HOST, else the usual sockets', () => {
  assert.equal(resolveEndpoint('unix:///run/podman/podman.sock', { DOCKER_HOST: 'unix:///other.sock' }), { kind: 'socket', socketPath: '/run/podman/podman.sock', describe: 'unix:///run/podman/podman.sock' })
  assert.equal(resolveEndpoint('/x.sock', {}), { kind: 'socket', socketPath: '/x.sock', describe: '/x.sock' })
  assert.equal(resolveEndpoint('tcp://10.0.0.2:2375', {}), { kind: 'tcp', host: '10.0.0.2', port: 2375, describe: 'tcp://10.0.0.2:2375' })
  assert.equal(resolveEndpoint(undefined, { DOCKER_HOST: 'unix:///var/run/alt.sock' }), { kind: 'socket', socketPath: '/var/run/alt.sock', describe: 'unix:///var/run/alt.sock (DOCKER_HOST)' })
  assert.is(resolveEndpoint(undefined, { DOCKER_HOST: 'tcp://h:1' }).kind, 'env')
  assert.is(resolveEndpoint(undefined, {}).kind, 'socket')
})

test('the image list: by name or reference, pinned by id or repo digest', () => {
  const images = { bb: { image: 'localhost/bb:3', digest } }
  assert.equal(findAllowedImage(images, 'bb'), { name: 'bb', allowed: images.bb })
  assert.equal(findAllowedImage(images, 'localhost/bb:3'), { name: 'bb', allowed: images.bb })
  assert.is(findAllowedImage(images, 'alpine'), undefined)
  assert.is(findAllowedImage(images, 'constructor'), undefined)
  assert.is(findAllowedImage(images, '__proto__'), undefined)
  assert.equal(digestsOf({ Id: 'sha256:11', RepoDigests: ['localhost/bb@sha256:22'] }), ['sha256:11', 'sha256:22'])
  assert.equal(digestsOf({ Id: '33', RepoDigests: null }), ['sha256:33'])
})

/** An engine double: one container whose attach stream sends `out` on stdout, then ends, is cut (closed, no end) or (Podman under load) never ends. */
function fakeEngine (out: string | (() => string), ends: 'end' | 'cut' | 'never'): { engine: unknown, removed: () => number } {
  let removed = 0
  const frame = (b: Buffer): Buffer => { const h = Buffer.alloc(8); h[0] = 1; h.writeUInt32BE(b.length, 4); return Buffer.concat([h, b]) }
  const container = {
    attach: async (): Promise<PassThrough> => new PassThrough(),
    start: async (): Promise<void> => {},
    wait: async () => ({ StatusCode: 0 }),
    kill: async () => {},
    inspect: async () => ({ State: { OOMKilled: false } }),
    remove: async () => { removed++ }
  }
  let stream: PassThrough | undefined
  container.attach = async () => { stream = new PassThrough(); return stream }
  container.start = async () => {
    const text = typeof out === 'string' ? out : out()
    if (text !== '') stream!.write(frame(Buffer.from(text)))
    if (ends === 'end') { stream!.end(); stream!.resume() } else if (ends === 'cut') setTimeout(() => stream!.destroy(), 10)
  }
  const engine = { getImage: () => ({ inspect: async () => ({ Id: digest, RepoDigests: [] }) }), createContainer: async () => container }
  return { engine, removed: () => removed }
}

test('an attach stream that never ends, or is cut, is no result: the copy fails (EXECUTOR_UNAVAILABLE), never returns partial output as ok', async () => {
  const images = { bb: { image: 'x', digest } }
  const whole = fakeEngine('144\n', 'end')
  const ok = await new DockerExecutor({ engine: whole.engine as never, workDir: dir, settings: { images } }).run(base)
  assert.is(new TextDecoder().decode(ok.output), '144\n')
  for (const how of ['never', 'cut'] as const) {
    const cut = fakeEngine(how === 'cut' ? '14' : '', how)
    const err = await new DockerExecutor({ engine: cut.engine as never, workDir: dir, settings: { images } }).run({ ...base, timeoutMs: 60_000 }).then(() => undefined, (e: Error & { code: string }) => e)
    assert.is(err?.code, 'EXECUTOR_UNAVAILABLE', how)
    assert.match(err?.message ?? '', /did not deliver the container's whole output/)
    assert.is(cut.removed(), 1)
  }
})

test('a run whose attach stream ended with no output at all is run once more, and that run\'s answer stands', async () => {
  const images = { bb: { image: 'x', digest } }
  let runs = 0
  const lost = fakeEngine(() => ++runs === 1 ? '' : '144\n', 'end')
  const r = await new DockerExecutor({ engine: lost.engine as never, workDir: dir, settings: { images } }).run(base)
  assert.is(new TextDecoder().decode(r.output), '144\n')
  assert.is(runs, 2)
  assert.is(lost.removed(), 2)
  let quiet = 0
  const silent = fakeEngine(() => { quiet++; return '' }, 'end')
  const s = await new DockerExecutor({ engine: silent.engine as never, workDir: dir, settings: { images } }).run(base)
  assert.is(s.output.length, 0, 'a program that prints nothing: empty, after one more run')
  assert.is(quiet, 2)
})

test.after(() => rmSync(dir, { recursive: true, force: true }))
test.run()
