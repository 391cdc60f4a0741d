// The provider policy (config `provider:`): the schema names each bad field, env and flags set it, the
// compute peer is built from it, GPUs offered are chosen from the probed ones, caps refuse with a code.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { defaultConfig, envLayer, loadConfig, validateConfig } from '../../../src/node/config.js'
import { computePolicyInit, enabledExecutors } from '../../../src/node/provider-policy.js'
import { chooseOfferedGpus } from '../../../src/core/compute/gpu-offer.js'
import { decideOffer, DEFAULT_POLICY, type OfferContext } from '../../../src/core/compute/offer-policy.js'
import { providerFlags } from '../../../src/cli/node.js'
import { statusText } from '../../../src/cli/node-status.js'
import { table } from '../../../src/cli/output.js'
import { ConfigError } from '../../../src/errors.js'
import { NOT_BILLED, logTask, logTasks } from '../../../src/node/compute-subsystem.js'
import { RepeatLimiter } from '../../../src/net/guard/index.js'
import { peerIdBytesOf } from '../../../src/net/peer-ids.js'

const base = (provider: unknown): Record<string, unknown> => ({ ...defaultConfig('/tmp/dbc-policy'), provider })

function refusal (provider: unknown): { key: string, message: string, hint?: string } {
  try {
    validateConfig(base(provider))
  } catch (err) {
    assert.instance(err, ConfigError)
    return { key: (err as ConfigError & { key: string }).key, message: (err as Error).message, hint: (err as ConfigError).hint }
  }
  throw new Error(`accepted ${JSON.stringify(provider)}`)
}

test('a whole policy validates, and the old provider keys still do', () => {
  const c = validateConfig(base({
    priceCpuHour: 24,
    priceGpuHour: { RTX4090: 300, '*': 500 },
    autoStake: false,
    creditTasks: 2,
    minDisputeWindowS: 7200,
    executors: { wasm: { workerHeapMiB: 128 }, process: { enabled: true, network: false }, docker: { enabled: false } },
    slots: { cpu: 2, gpu: 1, memoryMiB: 4096, queue: 8 },
    gpusOffered: [0, 'RTX4090'],
    maxTask: { memoryMiB: 512, wallSeconds: 60, outputBytes: 1024, inputBytes: 2048 }
  }))
  assert.equal(c.provider?.slots, { cpu: 2, gpu: 1, memoryMiB: 4096, queue: 8 })
  assert.equal(validateConfig(base({ executors: ['wasm', 'docker'] })).provider?.executors, ['wasm', 'docker'])
  assert.equal(validateConfig(base({ priceCpuHour: 1 })).provider, { priceCpuHour: 1 })
})

test('each bad field is named, with what is allowed', () => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ executors: ['wasm', 'gpu'] }, 'provider.executors.1', /"gpu" is not an executor \(one of wasm, process, docker\)/],
    [{ executors: { wasm: { heap: 1 } } }, 'provider.executors.wasm.heap', /is not a known setting/],
    [{ executors: { process: { enabled: 'yes' } } }, 'provider.executors.process.enabled', /expected boolean/],
    [{ slots: { cpu: 0 } }, 'provider.slots.cpu', />=1/],
    [{ slots: { gpus: 1 } }, 'provider.slots.gpus', /is not a known setting/],
    [{ maxTask: { memoryMiB: 'lots' } }, 'provider.maxTask.memoryMiB', /expected number, got string "lots"/],
    [{ maxTask: { wallSeconds: 1.5 } }, 'provider.maxTask.wallSeconds', /int/i],
    [{ gpusOffered: ['RTX 4090!'] }, 'provider.gpusOffered.0', /is not a GPU index or model/],
    [{ priceGpuHour: { A100: -1 } }, 'provider.priceGpuHour.A100', />=0/],
    [{ compute: {} }, 'provider.compute', /is not a known setting/]
  ]
  for (const [provider, key, message] of cases) {
    const r = refusal(provider)
    assert.is(r.key, key, JSON.stringify(provider))
    assert.match(r.message, message, JSON.stringify(provider))
  }
  assert.match(refusal({ executors: { wasm: { heap: 1 } } }).hint ?? '', /enabled, workerHeapMiB/)
  assert.match(refusal({ maxTask: { memory: 1 } }).hint ?? '', /memoryMiB, wallSeconds, outputBytes, inputBytes/)
  // `compute:` (what the old status text suggested) points to the provider section
  assert.throws(() => validateConfig({ ...defaultConfig('/tmp/dbc-policy'), compute: { executors: ['process'] } }), (e: ConfigError) => e.key === 'compute' && /the `provider:` section/.test(e.hint ?? ''))
})

test('containers.logMaxMib: the engine log bound reaches the executor settings; a bad one is named', () => {
  const ok = validateConfig({ ...defaultConfig('/tmp/dbc-policy'), containers: { logMaxMib: 100 } })
  assert.is(ok.containers?.logMaxMib, 100)
  for (const bad of [0, 1.5, 'lots']) {
    assert.throws(() => validateConfig({ ...defaultConfig('/tmp/dbc-policy'), containers: { logMaxMib: bad } }), (e: ConfigError) => e.key === 'containers.logMaxMib', String(bad))
  }
  assert.throws(() => validateConfig({ ...defaultConfig('/tmp/dbc-policy'), containers: { logMax: 1 } }), (e: ConfigError) => /logMaxMib/.test(e.hint ?? ''))
})

test('env DBC_* and start flags set the policy; flags win over env', () => {
  const env = envLayer({ DBC_EXECUTORS: 'wasm,process', DBC_CPU_SLOTS: '3', DBC_PRICE_CPU_HOUR: '0.5', DBC_MAX_TASK_MEMORY_MIB: '128', DBC_GPUS_OFFERED: '0,RTX4090' })
  assert.equal(env.provider, { executors: ['wasm', 'process'], slots: { cpu: 3 }, priceCpuHour: 0.5, maxTask: { memoryMiB: 128 }, gpusOffered: ['0', 'RTX4090'] })
  assert.throws(() => envLayer({ DBC_PRICE_CPU_HOUR: 'cheap' }), (e: Error) => /DBC_PRICE_CPU_HOUR=cheap is not a number/.test(e.message))
  const flags = providerFlags({ executors: ['wasm'], cpuSlots: 1, maxTaskMemory: 64, maxTaskSeconds: 30, priceGpuHour: { RTX4090: 300 } })
  const c = loadConfig({ env: { DBC_DATA_DIR: '/tmp/dbc-policy-none', DBC_EXECUTORS: 'wasm,process', DBC_CPU_SLOTS: '3' }, flags: { dataDir: '/tmp/dbc-policy-none', provider: flags } })
  assert.equal(c.provider?.executors, ['wasm'])
  assert.equal(c.provider?.slots, { cpu: 1 })
  assert.equal(c.provider?.maxTask, { memoryMiB: 64, wallSeconds: 30 })
  assert.equal(c.provider?.priceGpuHour, { RTX4090: 300 })
})

test('defaults are today\'s behaviour: wasm only, docker with listed images, process never by default', () => {
  assert.equal(enabledExecutors(undefined, undefined), ['wasm'])
  const images = { images: { busybox: { image: 'x', digest: 'sha256:' + '0'.repeat(64) } } } as never
  assert.equal(enabledExecutors(undefined, images), ['wasm', 'docker'])
  assert.equal(enabledExecutors({ executors: { wasm: { enabled: false } } }, images), ['docker'])
  assert.equal(enabledExecutors({ executors: { process: { enabled: true } } }, undefined), ['wasm', 'process'])
  const init = computePolicyInit({ provider: undefined, containers: undefined })
  assert.equal(init.policy, { executors: ['wasm'] })
  assert.is(init.cpuSlots, undefined)
  const full = computePolicyInit({ provider: { slots: { cpu: 2, gpu: 1, queue: 4 }, maxTask: { wallSeconds: 30, memoryMiB: 100, outputBytes: 10, inputBytes: 20 }, executors: { process: { enabled: true, network: true } } }, containers: undefined })
  assert.equal(full.policy, { executors: ['wasm', 'process'], maxTaskMs: 30_000, maxInputBytes: 20, maxTaskMemoryMib: 100, maxOutputBytes: 10 })
  assert.equal([full.cpuSlots, full.gpuSlots, full.maxQueue, full.processNetwork], [2, 1, 4, true])
})

test('GPUs offered: a subset of the probed ones by index or model, then at most slots.gpu; declared ones after', () => {
  const probed = [
    { index: 0, name: 'NVIDIA GeForce RTX 4090', model: 'RTX4090', memoryMib: 24564 },
    { index: 1, name: 'NVIDIA A100-SXM4-80GB', model: 'A100', memoryMib: 81920 },
    { index: 2, name: 'NVIDIA GeForce RTX 4090', model: 'RTX4090', memoryMib: 24564 }
  ]
  const declared = [{ model: 'H100', count: 2, memoryMib: 81920, declared: true }]
  assert.equal(chooseOfferedGpus(probed, declared).probed.map(g => g.index), [0, 1, 2])
  const byModel = chooseOfferedGpus(probed, [], { offered: ['rtx 4090'] })
  assert.equal(byModel.probed.map(g => g.index), [0, 2])
  assert.equal(byModel.withheld, [1])
  assert.equal(byModel.gpus, [{ model: 'RTX4090', count: 2, memoryMib: 24564, declared: false }])
  assert.equal(chooseOfferedGpus(probed, [], { offered: ['1'] }).probed.map(g => g.index), [1])
  const capped = chooseOfferedGpus(probed, declared, { maxGpus: 4 })
  assert.equal(capped.probed.length, 3)
  assert.equal(capped.declared, [{ model: 'H100', count: 1, memoryMib: 81920, declared: true }])
  assert.equal(chooseOfferedGpus(probed, declared, { maxGpus: 0 }).gpus, [])
})

test('a lease asking more memory than provider.maxTask.memoryMiB is refused with a code naming the cap', () => {
  const ctx = (policy: Partial<typeof DEFAULT_POLICY>): OfferContext => ({ policy: { ...DEFAULT_POLICY, ...policy }, availableExecutors: ['wasm', 'process'], capacityFor: () => 4, freeSlotsFor: () => 4, perfScore: 100, now: 1000 })
  const req = { resources: { cpuCores: 1, memoryMib: 512 }, slots: 1 }
  const d = decideOffer(req, ctx({ maxTaskMemoryMib: 256 }))
  assert.is(d.kind, 'refuse')
  if (d.kind === 'refuse') assert.match(d.reason, /^TASK_MEMORY_TOO_LARGE: tasks of 512 MiB exceed this provider's limit of 256 MiB per task \(provider\.maxTask\.memoryMiB\)/)
  assert.is(decideOffer(req, ctx({ maxTaskMemoryMib: 512 })).kind, 'offer')
  const off = decideOffer({ ...req, executor: 'process' }, ctx({ executors: ['wasm'] }))
  assert.is(off.kind === 'refuse' ? off.reason.split(':')[0] : '', 'EXECUTOR_DISABLED')
  const offer = decideOffer(req, ctx({ priceCpuHour: 24 }))
  assert.is(offer.kind === 'offer' ? offer.terms.priceCpuHour : -1, 24)
})

test('node status text shows the policy in force, the compute and the overlay sections', () => {
  const status = {
    peerId: '12D3KooWtest', pid: 1, uptimeMs: 61_000, location: null, peers: 2, connections: 2, dht: { mode: 'server', routingTable: 1 }, dataDir: '/d', addrs: ['/ip4/127.0.0.1/tcp/1'], metrics: null,
    overlay: { view: 3, knownPeers: 4, vivaldiError: 0.25, published: 2 },
    compute: {
      cpu: { slots: 2, cores: 4, score: 99.6 }, memoryMib: 4096, gpus: [{ model: 'RTX4090', count: 1, memoryMib: 24576, declared: true }], tasksRun: 7,
      policy: {
        prices: { cpuHour: 24, gpuHour: { RTX4090: 300, '*': 500 }, unit: 'DBC' },
        executors: { wasm: { enabled: true, available: true, limits: { workerHeapMiB: 64 } }, process: { enabled: false, available: false, reason: 'off in the provider policy', limits: { network: false } }, docker: { enabled: true, available: false, reason: 'no engine socket', limits: { pidsLimit: 256 } } },
        slots: { cpu: 2, gpu: 1, memoryMiB: 4096, queue: 64 },
        gpus: { offered: [], withheld: [1] },
        maxTask: { memoryMiB: 256, wallSeconds: 600, outputBytes: 16 * 1048576, inputBytes: 16 * 1048576 },
        trainers: ['torch-mnist'],
        images: [{ name: 'busybox', image: 'localhost/busybox:1', digest: 'sha256:x' }]
      }
    }
  }
  const text = statusText(status, table)
  for (const want of [/compute\s+2 CPU slots \(4 cores, score 100\), 4 GiB for tasks/, /prices\s+24 DBC\/CPU-hour, RTX4090 300, other GPUs 500 DBC\/GPU-hour/,
    /executors\s+wasm: on \(workerHeapMiB 64\)/, /process: off/, /docker: unavailable: no engine socket/, /withheld by policy: GPU 1/,
    /max per task\s+256 MiB, 10m0s, output 16 MiB, input 16 MiB/, /trainers\s+torch-mnist/, /images\s+busybox \(localhost\/busybox:1\)/,
    /tasks run\s+7/, /overlay\s+view 3, 4 known peers, Vivaldi error 0\.25, 2 capability records published/]) {
    assert.match(text, want)
  }
})

test('a provider logs each task it ran at info, and refused ones once per job and code per window', () => {
  const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const log = { info: (obj: Record<string, unknown>, msg: string) => { lines.push({ obj, msg }) } } as never
  const submitter = '12D3KooWRwq9iQehdMNvZA1GaBZ2Dp1qJWjzm7r1akHgTznQJH9D'
  const rec = { job: 'ab12', task: 4, attempt: 1, submitter: peerIdBytesOf(submitter), executor: 'wasm', outcome: 'ok' as const, durationMs: 12.4, resultBytes: 8, billedUnits: 500_000_000_000n }
  const limiter = new RepeatLimiter(10_000)
  logTask(log, rec, limiter, 0)
  logTask(log, rec, limiter, 1) // every task that ran has its line
  assert.is(lines.length, 2)
  assert.equal(lines[0].obj, { job: 'ab12', task: 4, attempt: 1, submitter, executor: 'wasm', outcome: 'ok', durationMs: 12, resultBytes: 8, billed: '0.0000005 DBC', billedUnits: '500000000000' })
  assert.match(lines[0].msg, /task ok: job ab12 task 4 \(wasm\)/)
  const refused = { ...rec, outcome: 'refused' as const, code: 'PAYMENT_BEHIND', error: 'PAYMENT_BEHIND: payer is 1 DBC behind', billedUnits: 0n, resultBytes: 0 }
  for (let t = 0; t < 5; t++) logTask(log, refused, limiter, 100 + t)
  assert.is(lines.length, 3, 'five refusals of one job and code within the window: one line')
  logTask(log, refused, limiter, 20_000)
  assert.is(lines.length, 4)
  assert.is(lines[3].obj.repeated, 4)
  assert.is(lines[3].obj.code, 'PAYMENT_BEHIND')
  // a copy cut short by the provider's stop: its receipt measured use, but it is not paid, and the line says so
  logTask(log, { ...rec, outcome: 'failed', code: 'PEER_STOPPED', error: 'PEER_STOPPED: the compute peer is stopping', billedUnits: 2_100_000_000_000_000n }, limiter, 30_000)
  assert.is(lines[4].obj.billed, NOT_BILLED)
  assert.is(lines[4].obj.billedUnits, '0')
  assert.is(lines[4].obj.unpaid, '0.0021 DBC')
})

test('a bundle\'s tasks: the ok ones share one line naming each task, with their sums; each failure and refusal keeps its own line', () => {
  const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const log = { info: (obj: Record<string, unknown>, msg: string) => { lines.push({ obj, msg }) } } as never
  const submitter = '12D3KooWRwq9iQehdMNvZA1GaBZ2Dp1qJWjzm7r1akHgTznQJH9D'
  const rec = { job: 'ab12', task: 4, attempt: 1, submitter: peerIdBytesOf(submitter), executor: 'wasm', outcome: 'ok' as const, durationMs: 1.4, resultBytes: 8, billedUnits: 500_000_000_000n }
  const failed = { ...rec, task: 6, outcome: 'failed' as const, code: 'TASK_TRAP', error: 'TASK_TRAP: unreachable', billedUnits: 0n, resultBytes: 0 }
  const refused = { ...rec, task: 8, outcome: 'refused' as const, code: 'LEASE_SLOTS_BUSY', error: 'LEASE_SLOTS_BUSY: not started', billedUnits: 0n, resultBytes: 0 }
  logTasks(log, [rec, { ...rec, task: 5, attempt: 2, durationMs: 2.4 }, failed, { ...rec, task: 7 }, refused], new RepeatLimiter(10_000), 0)
  assert.is(lines.length, 3)
  assert.match(lines[0].msg, /task failed: job ab12 task 6 \(wasm\)/)
  assert.is(lines[0].obj.code, 'TASK_TRAP')
  assert.match(lines[1].msg, /task refused: job ab12 task 8/)
  assert.equal(lines[2].obj, { job: 'ab12', tasks: [4, 5, 7], attempts: [1, 2, 1], count: 3, submitter, executor: 'wasm', outcome: 'ok', durationMs: 5, resultBytes: 24, billed: '0.0000015 DBC', billedUnits: '1500000000000' })
  assert.is(lines[2].msg, `tasks ok: job ab12 tasks 4, 5, 7 (wasm) for ${submitter}`)
  // a bundle with one ok task: logTask's own line
  lines.length = 0
  logTasks(log, [rec], undefined, 0)
  assert.equal(lines.map(l => l.msg), [`task ok: job ab12 task 4 (wasm) for ${submitter}`])
})

test.run()
