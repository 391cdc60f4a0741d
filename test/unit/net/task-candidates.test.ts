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

test.run()
