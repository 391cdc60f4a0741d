// Hostile wasm against real daemons (issue 12, "A wasm sandbox that holds"): a multi-memory bomb, a table
// bomb and a module importing outside the task ABI are refused at submission by the submitter's own daemon
// (its API names code.wasm); sent anyway by a raw libp2p identity that skips that check (lease request ->
// offer -> lease -> task on /dbc/task/1.0.0), each is refused at validation by the provider with a clear
// error in the task's result, and the provider charges that sender. A memory bomb is stopped at its limit
// and a WASI module that tries to open ../../etc/passwd, /proc/self/environ and every node's identity.key
// finds nothing to read; those run from the honest target, which no provider charges (honest code hits
// limits). The providers keep serving; honest grid jobs on the same providers at the same time finish with
// every result correct.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { repoRoot, type LocalNetwork, type LocalNode } from '../../demo/network.js'
import { fundJob, providerChain } from '../payment/raw-payer.js'
import { hostileIdentity, penalties, startSecurityNet, withHonestJobs, type HostileIdentity, type SecurityNet } from './harness.js'
import { funcImport, table, withMemories } from '../unit/compute/wasm-bytes.js'
import { Libp2pJobTransport } from '../../src/net/tasks.js'
import { signLease } from '../../src/core/scheduler/ownership.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import type { dbc } from '../../src/wire/gen/wire.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface Copy { attempt: number, provider: string, outcome: string, error?: string }
interface Ended { jobId: string, status: string, copies: Copy[], outputs: string[] }

/** Writes `code` as a one-task wasm job beside `submitter`'s data dir; the manifest and its folder. */
function hostileManifest (submitter: LocalNode, name: string, code: Uint8Array, opts: { entry?: string, input?: string, memoryMib?: number } = {}): { manifest: Record<string, unknown>, dir: string } {
  const dir = join(submitter.dataDir, '..', `hostile-${name}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'code.wasm'), code)
  return {
    dir,
    manifest: {
      name: `hostile-${name}`,
      executor: 'wasm',
      code: { wasm: 'code.wasm' },
      entry: opts.entry ?? 'run',
      inputs: { list: [opts.input ?? ''] },
      resources: { cores: 1, memoryMib: opts.memoryMib ?? 64 },
      // one copy: this is about what a provider does with hostile code (the default checks would send it to both)
      verification: { mode: 'off' },
      task: { timeoutMs: 20_000, expectedMs: 5, maxAttempts: 2, inputEncoding: 'utf8' }
    }
  }
}

/** What the submitter's daemon answers when asked to submit `code`: the refusal's code and message. */
async function submitRefusal (submitter: LocalNode, name: string, code: Uint8Array, memoryMib?: number): Promise<{ code: string, message: string }> {
  const { manifest, dir } = hostileManifest(submitter, name, code, { memoryMib })
  try {
    const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 30_000 })
    return { code: 'ACCEPTED', message: `job ${jobId} was accepted` }
  } catch (err) {
    return { code: (err as { code?: string }).code ?? '', message: (err as Error).message }
  }
}

/**
 * A hostile submitter that skips the submitter's module check: a raw libp2p identity speaking
 * /dbc/task/1.0.0 to `provider` the way the job runner does (a lease request, the provider's offer, a
 * lease on that offer), then sending one task per module; the provider's result for each.
 */
async function sendModulesRaw (id: HostileIdentity, provider: LocalNode, modules: Array<{ code: Uint8Array, memoryMib: number }>, net: LocalNetwork): Promise<dbc.task.v1.ITaskResult[]> {
  await id.host.dial(multiaddr(provider.addrs[0]), { signal: AbortSignal.timeout(15_000) })
  const peer = peerIdFromString(provider.peerId)
  const transport = new Libp2pJobTransport({ host: id.host, candidates: () => [peer], offerTimeoutMs: 15_000 })
  try {
    const jobId = new Uint8Array(randomBytes(32))
    // providers work only against escrow on their chain: the attacker funds its job like anyone
    const payment = await fundJob(await providerChain(net, provider), jobId, undefined, undefined, id.peerBytes)
    const offers = await transport.requestOffers({
      jobId, requester: id.peerBytes, resources: { cpuCores: 1, memoryMib: 64 }, slots: modules.length, executor: 'wasm',
      expectedTaskMs: 5, maxInputBytes: 64, requestExpiresAt: Date.now() + 10_000, payment
    }, {})
    const offer = offers[0]?.offer
    assert.ok(offer !== undefined && (offer.refusal ?? '') === '', `no offer from ${provider.spec.name}: ${JSON.stringify(offer?.refusal)}`)
    const leaseId = new Uint8Array(randomBytes(16))
    const lease = signLease(nodeSigner(id.secret.subarray(0, 32)), { leaseId, offerId: offer.offerId, jobId, holder: id.peerBytes, provider: offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 1000, payment })
    await transport.openLease(provider.peerId, lease, { signal: AbortSignal.timeout(15_000) })
    const out: dbc.task.v1.ITaskResult[] = []
    for (const [i, m] of modules.entries()) {
      out.push(await transport.runTask(provider.peerId, {
        taskId: new Uint8Array(randomBytes(16)), jobId, leaseId, index: i, attempt: 1, executor: 'wasm', code: m.code, entry: 'run',
        input: new Uint8Array(0), deadlineMs: 20_000, memoryLimitMib: m.memoryMib
      }, { signal: AbortSignal.timeout(60_000) }))
    }
    return out
  } finally {
    transport.close()
  }
}

/** Submits a one-task job running `code` on `submitter`, waits for its end; its status, task 0's copies and outputs. */
async function runHostileJob (submitter: LocalNode, name: string, code: Uint8Array, opts: { entry?: string, input?: string, memoryMib?: number } = {}): Promise<Ended> {
  const { manifest, dir } = hostileManifest(submitter, name, code, opts)
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: dir }, { timeoutMs: 30_000 })
  const end = Date.now() + 120_000
  let status: Record<string, any>
  for (;;) {
    status = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 })
    if (status.status !== 'running' || Date.now() > end) break
    await sleep(200)
  }
  const ex = await submitter.api.call<{ task?: { copies: Copy[] } }>('GET', `/v1/jobs/${jobId}/explain?task=0`, undefined, { timeoutMs: 30_000 })
  const { results } = await submitter.api.call<{ results: Array<{ output: string }> }>('GET', `/v1/jobs/${jobId}/results`, undefined, { timeoutMs: 30_000 })
  return { jobId, status: status.status, copies: ex.task?.copies ?? [], outputs: results.map(r => Buffer.from(r.output, 'base64').toString('utf8')) }
}

/** The job failed, every copy that ran ended with `code` and a message matching `re`. */
function refusedWith (r: Ended, code: string, re: RegExp): void {
  const ran = r.copies.filter(c => c.error !== undefined || c.outcome !== 'pending')
  assert.ok(ran.length >= 1, `no copy of ${r.jobId} ran: ${JSON.stringify(r.copies)}`)
  for (const c of ran) {
    assert.ok(c.error?.includes(code), `copy ${c.attempt} on ${c.provider}: ${String(c.error)}`)
    assert.match(c.error ?? '', re)
  }
  assert.is.not(r.status, 'finished', `hostile job ${r.jobId} finished`)
}

let sn: SecurityNet

test.before(async () => {
  sn = await startSecurityNet({ providers: 2, log: s => { console.log(s) } })
})

test('hostile modules are refused (and their sender charged) or stopped, the WASI probe reads nothing, and honest jobs finish meanwhile', async () => {
  const nodes = [sn.target, ...sn.providers]
  const [p0] = sn.providers
  const keys = nodes.map(n => join(n.dataDir, 'identity.key'))
  const keyBytes = keys.map(k => readFileSync(k))
  const probePaths = ['../../etc/passwd', '/etc/passwd', '/proc/self/environ', '../../../../proc/self/environ', ...keys, ...keys.map(k => `../../../../../../..${k}`), 'input']
  const refused = [
    // 8 memories of 1 MiB each: V8 would give it 8x the task's cap
    { name: 'multi-memory', code: withMemories(8, 16, 16), memoryMib: 1, re: /the module declares too many memories \(declared \+ imported\): 8, above the limit of 1/ },
    { name: 'table-bomb', code: withMemories(1, 1, 1, { tables: [table(10_000_000, 10_000_000)] }), memoryMib: 64, re: /table 0 starts with too many elements: 10000000, above the limit of 100000/ },
    { name: 'foreign-import', code: withMemories(1, 1, 1, { imports: [funcImport('env', 'system')] }), memoryMib: 64, re: /imports env\.system \(function\), which is outside the task ABI/ }
  ]
  const attacker = await hostileIdentity()
  try {
    const run = await withHonestJobs(sn.target, { tasks: 12, salt: 7000 }, async () => {
      return await Promise.all([
        // the honest submitter's daemon refuses each before it ships, naming the field
        Promise.all(refused.map(async r => await submitRefusal(sn.target, r.name, r.code, r.memoryMib))),
        // a sender that skips that check: refused at validation by the provider
        sendModulesRaw(attacker, p0, refused, sn.net),
        runHostileJob(sn.target, 'membomb', new Uint8Array(readFileSync(join(repoRoot, 'src/compute/modules/membomb.wasm'))), { memoryMib: 48 }),
        runHostileJob(sn.target, 'wasi-probe', new Uint8Array(readFileSync(join(repoRoot, 'src/compute/modules/wasi-probe.wasm'))), { entry: '_start', input: probePaths.join('\n') }),
        // creates files and grows them by 1 GiB per call through the in-memory WASI file system
        runHostileJob(sn.target, 'wasi-fsbomb', new Uint8Array(readFileSync(join(repoRoot, 'src/compute/modules/wasi-fsbomb.wasm'))), { entry: '_start', input: 'input' })
      ])
    })
    const [atSubmit, raw, bomb, probe, fsbomb] = run.value
    console.log(JSON.stringify({ honestJobs: run.jobs, tasksChecked: run.tasksChecked, atSubmit, raw: raw.map(r => r.error), bomb: bomb.copies.map(c => c.error), probe: probe.status }))
    for (const [i, r] of refused.entries()) {
      assert.is(atSubmit[i].code, 'MANIFEST_BAD_MODULE', `${r.name}: ${atSubmit[i].message}`)
      assert.ok(atSubmit[i].message.startsWith('code.wasm (code.wasm): providers refuse this module before it runs: '), atSubmit[i].message)
      assert.match(atSubmit[i].message, r.re)
      assert.is(raw[i].ok, false, `${r.name} ran on ${p0.spec.name}`)
      assert.ok((raw[i].error ?? '').startsWith('TASK_BAD_MODULE: the module was refused before it ran: '), `${r.name}: ${String(raw[i].error)}`)
      assert.match(raw[i].error ?? '', r.re)
    }
    // the provider that refused them charged their sender: three offences (one per module)
    const charged = await penalties(p0)
    const score = charged.peers.get(attacker.peerId)
    console.log(JSON.stringify({ attackerScoreOnProvider: score }))
    assert.ok(score !== undefined && score <= -50, `${p0.spec.name} did not charge the attacker: ${JSON.stringify([...charged.peers])}`)
    // stopped at its limit, with a clear error, and its (honest) sender not charged for it
    refusedWith(bomb, 'TASK_MEMORY_LIMIT', /hit its memory cap of 48 MiB/)
    for (const p of sn.providers) assert.not.ok((await penalties(p)).peers.has(sn.target.peerId), `${p.spec.name} charged the honest target`)
    // The probe is a well-formed WASI command: it runs, and every host path is denied by the in-memory WASI.
    assert.is(probe.status, 'finished', JSON.stringify(probe.copies))
    const lines = probe.outputs[0].trim().split('\n')
    assert.is(lines.length, probePaths.length, probe.outputs[0])
    for (const [i, p] of probePaths.entries()) {
      if (p === 'input') assert.match(lines[i], /^input: read \d+: \.\.\/\.\.\/etc\/passwd/)
      else assert.ok(lines[i].startsWith(`${p}: denied `), lines[i])
    }
    assert.not.match(probe.outputs[0], /root:x:|PATH=/)
    for (const k of keyBytes) assert.not.ok(Buffer.from(probe.outputs[0]).includes(k.subarray(0, 16)), 'an identity key leaked')
    // The file system is read-only: every create or grow was refused with EROFS (69); only reading the input opened.
    assert.is(fsbomb.status, 'finished', JSON.stringify(fsbomb.copies))
    const fsLines = fsbomb.outputs[0].trim().split('\n')
    assert.is(fsLines.length, 15, fsbomb.outputs[0])
    for (const l of fsLines) assert.ok(l === 'path_open input: 0' || l.endsWith(': 69'), l)
    // the honest jobs ran beside the attack and were all correct (withHonestJobs asserted each result)
    assert.ok(run.jobs >= 1 && run.tasksChecked >= 12)
  } finally {
    await Promise.resolve(attacker.host.stop()).catch(() => {})
  }
  // every node is still up and answers
  for (const n of nodes) {
    assert.is(n.process.exitCode, null, `${n.spec.name} exited`)
    const st = await n.api.call<{ peerId: string }>('GET', '/v1/status', undefined, { timeoutMs: 30_000 })
    assert.is(st.peerId, n.peerId)
  }
})

test.after(async () => { await sn?.stop() })
test.run()
