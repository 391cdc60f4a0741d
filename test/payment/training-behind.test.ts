// A training payer that stops signing mid-job gets no more than each member's credit of free
// rounds (issue 13; review: members checked the escrow only at the invitation). Real daemons on one
// anvil: a submitter made to cheat by the preloaded fixture (test/payment/fixtures/
// misbehaving-payer.ts: after N vouchers it sends none) and two members whose policy prices a
// round themselves (provider.priceCpuHour, provider.training.minRoundS). Each member counts the
// rounds it delivered against the vouchers it holds (its payment gate's ledger), refuses the next
// round PAYER_BEHIND once the unsigned work passes its credit (one round's price), and the
// submitter's job shows the refusals and fails with that code.
process.env.DBC_SKIP_BENCHMARK = '1'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { LocalNetwork, repoRoot, type LocalNode } from '../../demo/network.js'
import { decimalToUnits } from '../../src/core/compute/pricing.js'
import { taskPriceUnits } from '../../src/core/settlement/credit.js'
import { waitFor, note } from './paid-network.js'

const FIXTURE = pathToFileURL(join(repoRoot, 'test/payment/fixtures/misbehaving-payer.ts')).href
/** What the members ask per CPU-hour (DBC): a round of ~60 ms of CPU bills ~0.0017 DBC. */
const PRICE_CPU_HOUR = 100
/**
 * The members' floor of a round's time in their round price (seconds). A round here bills ~40 to
 * ~300 ms of CPU (process CPU time: noisy on a loaded box), and the credit is one round at the
 * price of the longest the member has seen: a few rounds of unsigned work.
 */
const MIN_ROUND_S = 0.05
/** Vouchers the submitter sends in all (both members together) before it stops signing. */
const VOUCHERS = 4
const SPEC = { model: { kind: 'mlp', hidden: 64 }, dataset: { trainPerClass: 100, testPerClass: 50 }, groupSize: 2, rounds: 80, localSteps: 50, batchSize: 32, learningRate: 0.1, seed: 7, evalEvery: 0, deadline: { initialMs: 20_000, maxMs: 5000 }, budget: 5, maxPricePerHour: PRICE_CPU_HOUR }

interface PaymentRow { chainJobId: string, delivered: string, signed: string, behind: string, maxBehind: string, tasks: number, refusals: number, lastRefusal?: string }

/** "0.0014 DBC" as wei. */
const wei = (coins: string): bigint => decimalToUnits(coins.replace(/ DBC$/, ''))

let net: LocalNetwork
let submitter: LocalNode
let members: LocalNode[]

test.before(async () => {
  net = new LocalNetwork()
  const saved = { opts: process.env.NODE_OPTIONS, mode: process.env.DBC_TEST_PAYER }
  process.env.NODE_OPTIONS = `${saved.opts ?? ''} --import tsx --import ${FIXTURE}`.trim()
  process.env.DBC_TEST_PAYER = `stop-signing:${VOUCHERS}`
  try {
    submitter = await net.start({ name: 'submitter', location: 'Tokyo', extra: ['--no-connection-monitor'] }, [], { timeoutMs: 120_000 })
  } finally {
    if (saved.opts === undefined) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = saved.opts
    if (saved.mode === undefined) delete process.env.DBC_TEST_PAYER; else process.env.DBC_TEST_PAYER = saved.mode
  }
  members = await Promise.all([0, 1].map(async i => {
    const name = `member-${i}`
    mkdirSync(join(net.root, name), { recursive: true })
    writeFileSync(join(net.root, name, 'config.yaml'), `provider:\n  priceCpuHour: ${PRICE_CPU_HOUR}\n  creditTasks: 1\n  training:\n    minRoundS: ${MIN_ROUND_S}\n`)
    return await net.start({ name, location: 'Osaka', extra: ['--no-connection-monitor'] }, [submitter.addrs[0]], { timeoutMs: 120_000 })
  }))
  await waitFor('members connected to the submitter', async () => {
    const { peers } = await submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
    return members.every(m => peers.some(p => p.peerId === m.peerId)) ? true : undefined
  })
  // a member refuses invitations until it knows its chain's contract (CHAIN_UNAVAILABLE)
  for (const m of members) await waitFor(`${m.spec.name}'s chain`, async () => (await m.api.call<{ contract?: string }>('GET', '/v1/chain/status')).contract !== undefined ? true : undefined)
  note('network up')
})
test.after(async () => { await net?.stop() })

test('a payer that stops signing gets at most each member\'s credit of free rounds; members refuse PAYER_BEHIND and the job says so', async () => {
  const peers = members.map(m => m.peerId)
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/training', { spec: SPEC, peers })
  const job = await waitFor(`training job ${jobId} to end`, async () => {
    const j = await submitter.api.call<any>('GET', `/v1/training/${jobId}`, undefined, { timeoutMs: 5000 })
    return j.status === 'running' ? undefined : j
  }, 150_000)
  note(`job ended: ${job.status} round ${job.round}: ${JSON.stringify(job.error)}`)
  assert.is(job.status, 'failed', 'the job did not get its rounds for free')
  assert.ok(job.round < SPEC.rounds - 1, `stopped early (round ${job.round})`)
  assert.is(job.error?.code, 'PAYER_BEHIND', JSON.stringify(job.error))
  const refusals: Array<{ peer: string, code?: string, reason: string }> = job.refusals
  assert.ok(refusals.some(r => r.code === 'PAYER_BEHIND'), `the job lists the members' refusals: ${JSON.stringify(refusals)}`)
  for (const r of refusals.filter(r => r.code === 'PAYER_BEHIND')) assert.match(r.reason, /^round \d+: PAYER_BEHIND: payer is [0-9.]+ DBC behind on job 0x[0-9a-f]{8}…/)
  const floor = taskPriceUnits({ priceGpuHour: 0, priceCpuHour: PRICE_CPU_HOUR }, 0, 1, MIN_ROUND_S * 1000)
  let refusedSomewhere = false
  for (const m of members) {
    const st = await m.api.call<{ compute?: { payments?: PaymentRow[] } }>('GET', '/v1/status')
    const rows = st.compute?.payments ?? []
    assert.is(rows.length, 1, `${m.spec.name} worked for one escrow: ${JSON.stringify(rows)}`)
    const row = rows[0]
    note(`${m.spec.name}: ${JSON.stringify(row)}`)
    assert.ok(row.tasks >= 1, 'it delivered rounds')
    if (row.refusals === 0) continue // dropped from the group (the other member's refusal ended the job) before it fell behind
    refusedSomewhere = true
    assert.match(row.lastRefusal ?? '', /^PAYER_BEHIND: /)
    // the credit the member extended: one round at its own price (credit grows with the rounds it measured)
    const credit = wei(/credit ([0-9.]+ DBC)\)/.exec(row.lastRefusal ?? '')?.[1] ?? '0')
    assert.ok(credit >= floor, `the credit ${credit} is at least one round at the member's floor (${floor})`)
    const unsigned = wei(row.delivered) - wei(row.signed)
    assert.ok(unsigned > 0n, 'some rounds went unsigned (the fixture stopped the vouchers)')
    // free work: the credit plus the one round admitted at its edge (each round bills at most the round price = the credit)
    assert.ok(wei(row.maxBehind) <= 2n * credit, `${m.spec.name}'s unsigned work ${row.maxBehind} is above its credit ${credit} wei plus one round`)
  }
  assert.ok(refusedSomewhere, 'a member refused a round PAYER_BEHIND')
})

test.run()
