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
import { taskLogOf } from '../../../src/compute/executors/output-tail.js'

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

const plan: ContainerPlan = { taskId: 't1', imageId: digest, entry: 'square', inputPath: '/data/ctr-1/input', memoryLimitMib: 128, cpus: 2, gpuIndexes: [], network: false, owner: 'ab12', log: { driver: 'k8s-file', maxBytes: 16 << 20 } }

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
  // a bounded log on the engine, byte-exact: Podman's k8s-file, Docker's local driver in one file
  assert.equal(h.LogConfig, { Type: 'k8s-file', Config: { 'max-size': String(16 << 20) } })
  assert.equal(containerCreateOptions({ ...plan, log: { driver: 'local', maxBytes: 1000 } }).HostConfig!.LogConfig, { Type: 'local', Config: { 'max-size': '1000', 'max-file': '1', compress: 'false' } })
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

interface Double {
  /** What the attach stream delivers on stdout, and how it finishes: ends, is cut (closed, no end) or never ends (Podman under load). */
  attach?: { out: string, err?: string, ends: 'end' | 'cut' | 'never' }
  /** What the engine logged (stdout, stderr), and whether reading the log ends or is cut. */
  log?: { out: string, err?: string, ends: 'end' | 'cut', delayMs?: number }
  status?: number
  podman?: boolean
}

/** An engine double: each container's attach stream and log as `d` says; counts containers created and removed, keeps their options. */
function fakeEngine (d: Double | (() => Double)): { engine: unknown, created: () => number, removed: () => number, options: () => Array<Record<string, any>> } {
  let removed = 0
  const options: Array<Record<string, any>> = []
  const frame = (id: number, s: string): Buffer => { const b = Buffer.from(s); const h = Buffer.alloc(8); h[0] = id; h.writeUInt32BE(b.length, 4); return Buffer.concat([h, b]) }
  const podman = (typeof d === 'function' ? d() : d).podman ?? true
  const createContainer = async (o: Record<string, any>): Promise<unknown> => {
    options.push(o)
    const spec = typeof d === 'function' ? d() : d
    let stream: PassThrough | undefined
    return {
      attach: async () => { stream = new PassThrough(); return stream },
      start: async () => {
        const a = spec.attach ?? { out: '', ends: 'end' }
        if (a.out !== '') stream!.write(frame(1, a.out))
        if (a.err !== undefined) stream!.write(frame(2, a.err))
        if (a.ends === 'end') stream!.end()
        else if (a.ends === 'cut') setTimeout(() => stream!.destroy(), 10)
      },
      wait: async () => ({ StatusCode: spec.status ?? 0 }),
      id: `c${options.length}`,
      // the executor reads the log through the engine client's modem (GET /containers/{id}/logs, streamed)
      modem: { dial: (_o: unknown, cb: (err: unknown, s?: PassThrough) => void) => { cb(null, logs()) } },
      kill: async () => {},
      inspect: async () => ({ State: { OOMKilled: false } }),
      remove: async () => { removed++ }
    }
    function logs (): PassThrough {
      const l = spec.log ?? { out: '', ends: 'end' }
      const s = new PassThrough()
      setImmediate(() => {
        // in pieces, split inside frames
        const all = Buffer.concat([...(l.out !== '' ? [frame(1, l.out)] : []), ...(l.err !== undefined ? [frame(2, l.err)] : [])])
        for (let i = 0; i < all.length; i += 5) s.write(all.subarray(i, i + 5))
        if (l.ends === 'end') setTimeout(() => s.end(), l.delayMs ?? 0)
        else setTimeout(() => s.destroy(), 10)
      })
      return s
    }
  }
  const engine = {
    getImage: () => ({ inspect: async () => ({ Id: digest, RepoDigests: [] }) }),
    version: async () => ({ Components: [{ Name: podman ? 'Podman Engine' : 'Engine' }] }),
    createContainer
  }
  return { engine, created: () => options.length, removed: () => removed, options: () => options }
}

const images = { bb: { image: 'x', digest } }
const runOn = async (e: { engine: unknown }, req: Partial<ExecutionRequest> = {}, settings: Record<string, unknown> = {}): Promise<{ output?: string, code?: string, message?: string, err?: unknown }> =>
  await new DockerExecutor({ engine: e.engine as never, workDir: dir, settings: { images, ...settings } }).run({ ...base, ...req })
    .then(r => ({ output: new TextDecoder().decode(r.output) }), (err: Error & { code: string }) => ({ code: err.code, message: err.message, err }))

test('the output is the engine\'s log, read after the container exited: an attach stream that lost it (ended empty, never ended, cut, or ended partial) does not matter, and one run is enough', async () => {
  for (const attach of [{ out: '', ends: 'end' }, { out: '', ends: 'never' }, { out: '14', ends: 'cut' }, { out: '14', ends: 'end' }] as const) {
    const e = fakeEngine({ attach, log: { out: '144\n', ends: 'end' } })
    assert.equal(await runOn(e, { timeoutMs: 60_000 }), { output: '144\n' }, `attach ${JSON.stringify(attach)}`)
    assert.is(e.created(), 1)
    assert.is(e.removed(), 1)
  }
})

test('a program that prints nothing: an empty answer after one run', async () => {
  const e = fakeEngine({ attach: { out: '', ends: 'end' }, log: { out: '', ends: 'end' } })
  assert.equal(await runOn(e), { output: '' })
  assert.is(e.created(), 1, 'one container, not a second run')
})

test('a log read that does not end is no result: EXECUTOR_UNAVAILABLE, never the part read, and the container is removed', async () => {
  const e = fakeEngine({ attach: { out: '144\n', ends: 'end' }, log: { out: '14', ends: 'cut' } })
  const r = await runOn(e)
  assert.is(r.code, 'EXECUTOR_UNAVAILABLE')
  assert.match(r.message ?? '', /log of the container could not be read to its end/)
  assert.is(e.removed(), 1)
})

test('output past the cap in the log is an error (TASK_OUTPUT_TOO_LARGE), though the attach stream saw less', async () => {
  const e = fakeEngine({ attach: { out: '', ends: 'end' }, log: { out: 'x'.repeat(101), ends: 'end' } })
  const r = await runOn(e, { maxOutputBytes: 100 })
  assert.is(r.code, 'TASK_OUTPUT_TOO_LARGE')
  assert.equal(await runOn(fakeEngine({ log: { out: 'x'.repeat(100), ends: 'end' } }), { maxOutputBytes: 100 }), { output: 'x'.repeat(100) })
})

test('the time the engine takes to serve the log is not billed: wallMs ends at the container\'s exit', async () => {
  const e = fakeEngine({ log: { out: '144\n', ends: 'end', delayMs: 1500 } })
  const t0 = performance.now()
  const r = await new DockerExecutor({ engine: e.engine as never, workDir: dir, settings: { images } }).run({ ...base })
  assert.is(new TextDecoder().decode(r.output), '144\n')
  assert.ok(performance.now() - t0 >= 1500, 'the log read took its time')
  assert.ok(r.wallMs < 1500, `billed ${r.wallMs} ms: the log read counted`)
  assert.ok(r.cpuMs < 1500 * (base.cpus ?? 1))
})

test('a log that kept less than the attach stream saw (it passed its bound and started over) is an error, never the cut log as the answer', async () => {
  const cut = await runOn(fakeEngine({ attach: { out: '1\n2\n3\n', ends: 'end' }, log: { out: '3\n', ends: 'end' } }))
  assert.is(cut.code, 'TASK_OUTPUT_TOO_LARGE')
  assert.match(cut.message ?? '', /passed the engine's log bound/)
  // Podman writes its own attach errors into the attach stream's stderr: not the container's, not a lost log
  const reset = 'Error: read unixpacket @->/proc/self/fd/13/attach: read: connection reset by peer\n'
  assert.equal(await runOn(fakeEngine({ attach: { out: '', err: reset, ends: 'end' }, log: { out: '144\n', ends: 'end' } })), { output: '144\n' })
})

test('a failed container\'s stderr comes from its log and travels on the error', async () => {
  const r = await runOn(fakeEngine({ attach: { out: '', ends: 'never' }, log: { out: '', err: 'failing on purpose\n', ends: 'end' }, status: 3 }))
  assert.is(r.code, 'TASK_EXIT_CODE')
  assert.match(r.message ?? '', /exited with code 3: failing on purpose/)
  assert.is(new TextDecoder().decode(taskLogOf(r.err)?.stderr), 'failing on purpose\n')
})

test('the log driver follows the engine (Podman: k8s-file; Docker: local), bounded by 2 x the output cap + 16 MiB, or the settings', async () => {
  const p = fakeEngine({ log: { out: '1\n', ends: 'end' } })
  await runOn(p, { maxOutputBytes: 4 << 20 })
  await runOn(p, { maxOutputBytes: 1 << 20 })
  assert.equal(p.options().map(o => o.HostConfig.LogConfig), [{ Type: 'k8s-file', Config: { 'max-size': String(24 << 20) } }, { Type: 'k8s-file', Config: { 'max-size': String(18 << 20) } }])
  const d = fakeEngine({ podman: false, log: { out: '1\n', ends: 'end' } })
  await runOn(d, {}, { logMaxMib: 3 })
  assert.equal(d.options()[0].HostConfig.LogConfig, { Type: 'local', Config: { 'max-size': String(3 << 20), 'max-file': '1', compress: 'false' } })
})

test.after(() => rmSync(dir, { recursive: true, force: true }))
test.run()
