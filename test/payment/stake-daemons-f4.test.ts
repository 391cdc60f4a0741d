// Review F4 with real daemons on one anvil: a provider that did not stake (`--no-auto-stake`)
// answers the submitter's lease requests with valid, bound offers and gets no lease
// (NOT_STAKED in the job's refusals); two staked providers run the job. The submitter reads the
// stake from the shared chain (Settlement.providers), as every node of a `local` network does by
// default (chain.requireStake).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LocalNetwork } from '../../demo/network.js'
import { connectedAndStaked, runTiles, PRICE_CPU_HOUR, type PaidNetwork } from './paid-network.js'

test('an unstaked provider is refused NOT_STAKED and runs nothing; the staked ones run the job', async () => {
  const net = new LocalNetwork()
  try {
    const submitter = await net.start({ name: 'submitter', location: 'Tokyo' }, [], { timeoutMs: 120_000 })
    const boot = [submitter.addrs[0]]
    const price = ['--price-cpu-hour', String(PRICE_CPU_HOUR)]
    const [a, b, unstaked] = await Promise.all([
      net.start({ name: 'staked-a', location: 'Osaka', extra: price }, boot, { timeoutMs: 120_000 }),
      net.start({ name: 'staked-b', location: 'Osaka', extra: price }, boot, { timeoutMs: 120_000 }),
      net.start({ name: 'unstaked', location: 'Osaka', extra: [...price, '--no-auto-stake'] }, boot, { timeoutMs: 120_000 })
    ])
    const providers = [a, b, unstaked]
    const accounts = await connectedAndStaked(submitter, providers, new Set([unstaked]))
    const w = await unstaked.api.call<{ stake?: { gpus: number } }>('GET', '/v1/wallet')
    assert.is(w.stake?.gpus ?? 0, 0, 'the --no-auto-stake provider has no stake')
    const p: PaidNetwork = { net, submitter, providers, accounts }
    const { jobId, status } = await runTiles(p, { verification: { redundancy: 2, quorum: 2 } })
    assert.is(status.status, 'finished', JSON.stringify(status.summary?.failures ?? status))
    const refusals = (status.summary?.refusals ?? status.refusals ?? {}) as Record<string, number>
    assert.ok((refusals.NOT_STAKED ?? 0) >= 1, `the unstaked provider's offers were refused NOT_STAKED: ${JSON.stringify(refusals)}`)
    const settle = await submitter.api.call<Record<string, any>>('POST', `/v1/jobs/${jobId}/settle`, undefined, { timeoutMs: 120_000 })
    const paid = new Set<string>(settle.payment.providers.map((x: Record<string, string>) => x.payout.toLowerCase()))
    assert.not.ok(paid.has(accounts.get(unstaked)!), 'nothing signed to the unstaked provider')
    assert.ok(paid.has(accounts.get(a)!) && paid.has(accounts.get(b)!), `both staked providers worked: ${JSON.stringify([...paid])}`)
    // and the unstaked provider never admitted a lease of the job: no ledger row for it
    const st = await unstaked.api.call<{ compute: { payments?: unknown[] } }>('GET', '/v1/status')
    assert.equal(st.compute.payments ?? [], [], 'no lease of the job reached the unstaked provider')
  } catch (err) {
    for (const node of net.nodes) process.stderr.write(`--- ${node.spec.name}\n${net.logOf(node).slice(-3000)}\n`)
    throw err
  } finally {
    await net.stop()
  }
})

test.run()
