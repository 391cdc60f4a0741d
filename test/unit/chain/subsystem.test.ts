// The chain subsystem: config parsing, and its API routes over a real bridge (embedded chain).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChainSubsystem, parseChainSettings } from '../../../src/chain/index.js'
import { fakeProviders, fakeSignedReceipts } from '../../../src/chain/testing.js'
import { openStore } from '../../../src/store/db.js'
import { ConfigError } from '../../../src/errors.js'

test('chain settings: defaults, rpc needs a url, bad values name their key', () => {
  const d = parseChainSettings(undefined)
  assert.is(d.kind, 'embedded')
  assert.is(d.chainId, 19880818)
  assert.throws(() => parseChainSettings({ kind: 'rpc' }), (e: unknown) => e instanceof ConfigError && e.key === 'chain.url')
  assert.throws(() => parseChainSettings({ contract: '0x12' }), (e: unknown) => e instanceof ConfigError && e.key === 'chain.contract')
  assert.is(parseChainSettings({ kind: 'rpc', url: 'http://127.0.0.1:8545', chainId: 31337 }).chainId, 31337)
})

test('routes: status, stake quote, stake, deposit, settle, payouts (bigints as strings)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-chain-sub-'))
  const store = openStore(join(dir, 'node.sqlite'))
  const routes = new Map<string, (req: { params: Record<string, string>, query: URLSearchParams, body: unknown, signal: AbortSignal }) => unknown>()
  const api = { route: (m: string, p: string, h: (req: never) => unknown) => { routes.set(`${m} ${p}`, h as never) } }
  const sub = new ChainSubsystem({ tickMs: 0, sandboxStake: false })
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
    const providers = fakeProviders(2, 'sub')
    await call('POST /v1/chain/stake', { body: { gpus: 1, provider: providers[0].payoutAddress } })
    await call('POST /v1/chain/deposit', { body: { jobId: 'job-api', amount: '1000000000000000000' } })
    sub.bridge!.submitReceipts('job-api', fakeSignedReceipts(new TextEncoder().encode('job-api'), providers, 4, 10n ** 15n))
    const settled = await call('POST /v1/chain/jobs/:id/settle', { params: { id: 'job-api' } })
    assert.is(settled.length, 1)
    assert.is(settled[0].state, 'confirmed')
    assert.equal(settled[0].withheld, [{ provider: providers[1].payoutAddress.toLowerCase() === settled[0].withheld[0].provider.toLowerCase() ? settled[0].withheld[0].provider : 'mismatch', amount: '2000000000000000' }])
    const p = await call('GET /v1/chain/payouts', { query: `provider=${providers[0].payoutAddress}` })
    assert.is(p.totalPaid, '2000000000000000')
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

test('sandbox stake: on the embedded chain the owner stakes unstaked payees so they are paid', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-chain-sandbox-'))
  const store = openStore(join(dir, 'node.sqlite'))
  const sub = new ChainSubsystem({ tickMs: 0 })
  try {
    await sub.start({ config: { dataDir: dir }, store })
    const b = sub.bridge!
    const providers = fakeProviders(3, 'sandbox')
    await b.deposit('job-sb', 10n ** 18n)
    b.submitReceipts('job-sb', fakeSignedReceipts(new TextEncoder().encode('job-sb'), providers, 6, 10n ** 15n))
    const [r] = await b.settleNow('job-sb')
    assert.is(r.state, 'confirmed')
    assert.equal(r.withheld, [])
    assert.is(r.paid?.length, 3)
    for (const p of providers) assert.is((await b.payouts({ provider: p.payoutAddress })).totalPaid, 2n * 10n ** 15n)
  } finally {
    await sub.stop()
    store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
