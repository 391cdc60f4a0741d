// The chain subsystem: config parsing, and its API routes over a real bridge (embedded chain).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChainSubsystem, chainJobIdOf, parseChainSettings } from '../../../src/chain/index.js'
import { openStore } from '../../../src/store/db.js'
import { ConfigError } from '../../../src/errors.js'

test('chain settings: defaults, rpc needs a url, bad values name their key', () => {
  const d = parseChainSettings(undefined)
  assert.is(d.kind, 'embedded')
  assert.is(d.network, 'sandbox')
  assert.is(d.chainId, 19880818)
  assert.throws(() => parseChainSettings({ kind: 'rpc' }), (e: unknown) => e instanceof ConfigError && e.key === 'chain.rpc')
  assert.throws(() => parseChainSettings({ contract: '0x12' }), (e: unknown) => e instanceof ConfigError && e.key === 'chain.contract')
  assert.throws(() => parseChainSettings({ sandboxStake: true }), (e: unknown) => e instanceof ConfigError && e.key === 'chain.sandboxStake')
  assert.is(parseChainSettings({ kind: 'rpc', url: 'http://127.0.0.1:8545', chainId: 31337 }).chainId, 31337)
})

test('chain.requireStake: jobs lease only staked providers on every network but the one-node sandbox, unless the config says not (review F4)', () => {
  for (const network of ['local', 'dbc-testnet', 'dbc-mainnet']) assert.is(parseChainSettings({}, { network }).requireStake, true, network)
  assert.is(parseChainSettings({ rpc: 'http://127.0.0.1:9545', chainId: 5 }).requireStake, true, 'a chain named by its RPC')
  assert.is(parseChainSettings({}).requireStake, false, 'the sandbox: its only provider is this node, not staked (auto-stake is off there)')
  assert.is(parseChainSettings({ requireStake: false }, { network: 'local' }).requireStake, false)
  assert.is(parseChainSettings({ requireStake: true }).requireStake, true)
  assert.throws(() => parseChainSettings({ requireStake: 'yes' }), (e: unknown) => e instanceof ConfigError && e.key === 'chain.requireStake')
})

test('routes: status, stake quote, stake, deposit, earnings, redeem, the job view, close, refund (bigints as strings)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-chain-sub-'))
  const store = openStore(join(dir, 'node.sqlite'))
  const routes = new Map<string, (req: { params: Record<string, string>, query: URLSearchParams, body: unknown, signal: AbortSignal }) => unknown>()
  const api = { route: (m: string, p: string, h: (req: never) => unknown) => { routes.set(`${m} ${p}`, h as never) } }
  const sub = new ChainSubsystem({ tickMs: 0 })
  const call = async (key: string, opts: { params?: Record<string, string>, query?: string, body?: unknown } = {}): Promise<any> => {
    const h = routes.get(key)
    if (h === undefined) throw new Error(`no route ${key}`)
    return await h({ params: opts.params ?? {}, query: new URLSearchParams(opts.query ?? ''), body: opts.body, signal: new AbortController().signal })
  }
  try {
    await sub.start({ config: { dataDir: dir }, store, api })
    const st = await call('GET /v1/chain/status')
    assert.is(st.chainId, 19880818)
    assert.is(st.reachable, true)
    assert.is(typeof st.balance, 'string')
    const q = await call('GET /v1/chain/stake-quote', { query: 'gpus=2' })
    assert.equal(q, { networkGpus: '0', amount: '200000000000000000000000' })
    const s = await call('POST /v1/chain/stake', { body: { gpus: 2 } })
    assert.is(s.gpus, 2)
    // Single-node sandbox: the node deposits, signs itself a voucher, accepts and redeems it.
    await call('POST /v1/chain/deposit', { body: { jobId: 'job-api', amount: '1000000000000000000', disputeWindow: 60 } })
    const b = sub.bridge!
    const job = chainJobIdOf('job-api', b.account)
    const sv = await b.signVoucher({ escrowId: job, provider: b.account, cumulative: 2n * 10n ** 15n, receiptsRoot: `0x${'55'.repeat(32)}`, receiptCount: 2 })
    assert.is((await b.acceptVoucher(sv)).ok, true)
    const before = await call('GET /v1/earnings')
    assert.equal([before.totals.signed, before.totals.pending], ['2000000000000000', '2000000000000000'])
    await call('POST /v1/chain/redeem')
    const e = await call('GET /v1/earnings')
    assert.equal(e.jobs.map((j: any) => [j.chainJobId, j.signed, j.redeemed, j.pending]), [[job, '2000000000000000', '2000000000000000', '0']])
    // The submitter's view, by the job id as given to deposit (text) or by the chain job id.
    const view = await call('GET /v1/chain/jobs/:id', { params: { id: 'job-api' } })
    assert.is(view.chainJobId, job)
    assert.equal(view.providers, [{ provider: b.account.toLowerCase(), signed: '2000000000000000', receiptCount: 2, redeemed: '2000000000000000', outstanding: '0' }])
    assert.is(view.refundable, false)
    assert.is((await call('GET /v1/chain/jobs/:id', { params: { id: job } })).paid, '2000000000000000')
    assert.is((await call('POST /v1/chain/jobs/:id/close', { params: { id: job } })).txHash.length, 66)
    let early: unknown
    try { await call('POST /v1/chain/jobs/:id/refund', { params: { id: job } }) } catch (err) { early = err }
    assert.match(String(early), /DisputeWindowOpen/)
    const w = await call('GET /v1/wallet')
    assert.equal(w.stake, { gpus: 2, amount: '200000000000000000000000' })
    await assert.not.throws(async () => await call('GET /v1/chain/status'))
    let err: unknown
    try { await call('POST /v1/chain/stake', { body: { gpus: 0 } }) } catch (e) { err = e }
    assert.match(String(err), /GPU count/)
  } finally {
    await sub.stop()
    store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
