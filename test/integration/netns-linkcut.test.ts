// Multi-host quick variant: a link cut during a multi-path (k=2) message stream. Five hosts in
// network namespaces with geo delays (test/netns/harness.ts); A (Frankfurt) streams sealed
// envelopes to B (Tokyo) over relays only; the uplink of the relay carrying the copies is taken
// down mid-stream. Needs root and `ip netns` (fails with the reason otherwise).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { NetnsCluster } from '../netns/harness.js'
import { runLinkCut } from '../netns/link-cut.js'

test('a relay link cut mid-stream: every message still delivered, once, over the other path', async () => {
  const c = await NetnsCluster.create([
    { name: 'fra', city: 'Frankfurt' }, { name: 'tyo', city: 'Tokyo' },
    { name: 'mow', city: 'Moscow' }, { name: 'sin', city: 'Singapore' }, { name: 'dxb', city: 'Dubai' }
  ])
  try {
    const r = await runLinkCut(c, { messages: 24, gapMs: 150, cutAfter: 8 })
    console.log(`link cut of ${r.cutRelay} after ${r.cutAfter}/${r.sent}: delivered ${r.delivered}, received ${r.received}, duplicates ${r.duplicates}, after the cut via ${JSON.stringify(r.viaAfterCut)}; latency before ${JSON.stringify(r.latencyBeforeMs)} after ${JSON.stringify(r.latencyAfterMs)}`)
    assert.equal(r.failed, [], 'some sends failed')
    assert.is(r.delivered, r.sent)
    assert.is(r.received, r.sent, 'B did not get every message')
    assert.is(r.duplicates, 0, 'B handed a message up twice')
    assert.not.ok(r.cutRelay in r.viaAfterCut, `messages still arrived via the cut relay ${r.cutRelay}`)
  } finally {
    await c.destroy()
    assert.equal(c.remainingNamespaces(), [])
  }
})

test.run()
