// A submitter's lease rounds and the capability lookup (Libp2pJobTransport.requestOffers): the
// candidates a lookup found answer the rounds of the next CANDIDATES_TTL_MS for the same request
// shape (one lookup in flight is shared), with peers connected since added; an empty or failed
// lookup is not kept, another request shape looks again, and after the TTL the next round looks again.
// A round where every candidate asked refused looks again at once (the lookup may have missed the
// providers that would offer: a lookup cut short finds the nearest records only).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { createHost } from '../../../src/net/host.js'
import { Libp2pJobTransport, CANDIDATES_TTL_MS, registerTaskProtocol } from '../../../src/net/tasks.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { DbcError } from '../../../src/errors.js'
import type { OfferRoundReport } from '../../../src/core/scheduler/ports.js'

test('a lookup\'s candidates answer later rounds for the same shape until the TTL; empty and failed lookups are not kept', async () => {
  const host = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const other = peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))))
  let calls = 0
  let answer: () => Promise<PeerId[]> = async () => [other]
  const tr = new Libp2pJobTransport({ host, candidates: async () => { calls++; return await answer() } })
  // every candidate excluded: no provider is asked, only the lookup runs
  const opts = { exclude: new Set([other.toString()]) }
  const realNow = Date.now
  try {
    await Promise.all([tr.requestOffers({ executor: 'wasm' }, opts), tr.requestOffers({ executor: 'wasm' }, opts)])
    assert.is(calls, 1, 'two rounds at once share one lookup')
    await tr.requestOffers({ executor: 'wasm' }, opts)
    assert.is(calls, 1, 'a round within the TTL uses the lookup\'s candidates')
    // a running job's rounds over the next 20 s reuse it too (at 10 s each job paid a full lookup every 10 s)
    const t0 = realNow()
    Date.now = () => t0 + 20_000
    await tr.requestOffers({ executor: 'wasm' }, opts)
    assert.is(calls, 1, 'a round 20 s after the lookup uses its candidates')
    Date.now = realNow
    await tr.requestOffers({ executor: 'wasm', resources: { gpuCount: 1 } }, opts)
    assert.is(calls, 2, 'another request shape looks again')
    const t = realNow()
    Date.now = () => t + CANDIDATES_TTL_MS + 1
    await tr.requestOffers({ executor: 'wasm' }, opts)
    assert.is(calls, 3, 'past the TTL the next round looks again')
    answer = async () => []
    Date.now = () => t + 3 * CANDIDATES_TTL_MS
    await tr.requestOffers({ executor: 'wasm' }, opts)
    await tr.requestOffers({ executor: 'wasm' }, opts)
    assert.is(calls, 5, 'an empty lookup is not kept')
    answer = async () => { throw new Error('dht down') }
    await tr.requestOffers({ executor: 'wasm' }, opts).catch(() => {})
    answer = async () => [other]
    await tr.requestOffers({ executor: 'wasm' }, opts)
    assert.is(calls, 7, 'a failed lookup is not kept')
    // a provider connected after the lookup is asked in the rounds that reuse it
    const late = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
    try {
      const offering = { id: 'late', offer: () => ({ offerId: new Uint8Array([7]), slots: 1, expiresAt: realNow() + 60_000 }), openLease: () => {}, runTask: async (): Promise<dbc.task.v1.ITaskResult> => ({ ok: false }) }
      await registerTaskProtocol(late, offering)
      await host.dial(late.getMultiaddrs()[0], { signal: AbortSignal.timeout(30_000) })
      const offers = await tr.requestOffers({ executor: 'wasm' }, opts)
      assert.is(calls, 7, 'the kept lookup answered')
      assert.equal(offers.map(o => o.view.provider), [late.peerId.toString()])
    } finally { await late.stop() }
  } finally {
    Date.now = realNow
    tr.close()
    await host.stop()
  }
})

test('a round where every candidate asked refuses drops the kept lookup: the next round looks again', async () => {
  const host = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const refuser = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  let calls = 0
  const tr = new Libp2pJobTransport({ host, candidates: async () => { calls++; return [refuser.peerId] } })
  try {
    const overPriced = { id: 'refuser', offer: () => { throw new DbcError('OVER_PRICE', 'price 100000 per slot-hour is above the requester\'s maximum 200') }, openLease: () => {}, runTask: async (): Promise<dbc.task.v1.ITaskResult> => ({ ok: false }) }
    await registerTaskProtocol(refuser, overPriced as any)
    await host.dial(refuser.getMultiaddrs()[0], { signal: AbortSignal.timeout(30_000) })
    assert.equal(await tr.requestOffers({ executor: 'wasm' }, {}), [])
    assert.equal(await tr.requestOffers({ executor: 'wasm' }, {}), [])
    assert.is(calls, 2, 'the second round looked up again')
    // every candidate excluded (a running job's round): nobody asked, the lookup is kept
    const opts = { exclude: new Set([refuser.peerId.toString()]) }
    await tr.requestOffers({ executor: 'wasm' }, opts)
    await tr.requestOffers({ executor: 'wasm' }, opts)
    assert.is(calls, 3)
  } finally {
    tr.close()
    await refuser.stop()
    await host.stop()
  }
})

test('a round reports the candidates asked and those that gave no offer, with why (user16 #5: explain showed only the offers)', async () => {
  const key = async (): Promise<Parameters<typeof createHost>[0]['privateKey']> => await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32)))
  const host = await createHost({ privateKey: await key(), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const offering = await createHost({ privateKey: await key(), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const mute = await createHost({ privateKey: await key(), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  // a peer nobody can reach: no address known
  const gone = peerIdFromPrivateKey(await key())
  const tr = new Libp2pJobTransport({ host, candidates: () => [offering.peerId, mute.peerId, gone], offerTimeoutMs: 3000 })
  try {
    await registerTaskProtocol(offering, { id: 'o', offer: () => ({ offerId: new Uint8Array([7]), slots: 1, expiresAt: Date.now() + 60_000 }), openLease: () => {}, runTask: async (): Promise<dbc.task.v1.ITaskResult> => ({ ok: false }) })
    // the mute peer takes the stream and never answers
    await mute.handle('/dbc/task/1.0.0', () => {})
    await host.dial(offering.getMultiaddrs()[0], { signal: AbortSignal.timeout(30_000) })
    await host.dial(mute.getMultiaddrs()[0], { signal: AbortSignal.timeout(30_000) })
    const reports: OfferRoundReport[] = []
    const offers = await tr.requestOffers({ executor: 'wasm' }, { report: r => { reports.push(r) } })
    assert.equal(offers.map(o => o.view.provider), [offering.peerId.toString()])
    assert.is(reports.length, 1)
    assert.is(reports[0].asked, 3)
    const silent = new Map(reports[0].silent.map(s => [s.provider, s.reason]))
    assert.equal([...silent.keys()].sort(), [mute.peerId.toString(), gone.toString()].sort())
    assert.is(silent.get(mute.peerId.toString()), 'no answer within 3 s')
    assert.ok((silent.get(gone.toString()) ?? '').length > 0)
    // a job's own abort is nobody's silence: no report
    const ac = new AbortController()
    const round = tr.requestOffers({ executor: 'wasm' }, { signal: ac.signal, report: r => { reports.push(r) } })
    ac.abort()
    await round.catch(() => {})
    assert.is(reports.length, 1)
  } finally {
    tr.close()
    await Promise.all([offering.stop(), mute.stop(), host.stop()])
  }
})

test.run()
