// A `routing: overlay` training job keeps its peers off connections while it runs here: they join
// the node's private set (src/net/routes/private-peers.ts; the gater refuses them, an open
// connection is closed) and leave it when the job ends, unless another running overlay-only job
// holds them; a peer private for another reason (a grid job) is left alone; the bootstrap relays
// never join (the envelopes' way out); a job allowing connections takes its peer out.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { OverlayOnlyPeers } from '../../../src/net/routes/private-peers.js'
import { privacyOf } from '../../../src/training/job-privacy.js'

const BOOT = '12D3KooWBoot'
function setup (): { priv: OverlayOnlyPeers, hungUp: string[], p: NonNullable<ReturnType<typeof privacyOf>['privacy']> } {
  const priv = new OverlayOnlyPeers()
  const hungUp: string[] = []
  priv.hangUp = peer => { hungUp.push(peer) }
  const p = privacyOf({ privatePeers: priv, config: { bootstrap: [`/ip4/10.0.0.1/tcp/4001/p2p/${BOOT}`] } } as any).privacy
  assert.ok(p !== undefined)
  return { priv, hungUp, p }
}

test('an overlay job\'s peers are private while it runs, and only until it ends', () => {
  const { priv, hungUp, p } = setup()
  p.overlayOnly('A', 'job1')
  p.overlayOnly('B', 'job1')
  p.overlayOnly(BOOT, 'job1')
  assert.ok(priv.has('A') && priv.has('B'))
  assert.not.ok(priv.has(BOOT), 'a bootstrap relay stays connected')
  assert.equal(hungUp, ['A', 'B'])
  // a second overlay job shares A
  p.overlayOnly('A', 'job2')
  p.jobEnded('job1')
  assert.ok(priv.has('A'), 'job2 still runs with A')
  assert.not.ok(priv.has('B'), 'B is reachable again')
  p.jobEnded('job2')
  assert.not.ok(priv.has('A'))
  // not marked as wanted directly: a later overlay job makes it private again
  p.overlayOnly('A', 'job3')
  assert.ok(priv.has('A'))
})

test('a peer a grid job made private is not the training job\'s to give back; a job allowing connections takes a peer out', () => {
  const { priv, p } = setup()
  priv.add('G')
  p.overlayOnly('G', 'job1')
  p.jobEnded('job1')
  assert.ok(priv.has('G'), 'still private for the grid job')
  p.overlayOnly('C', 'job2')
  p.connectionWanted('C')
  assert.not.ok(priv.has('C'), 'an auto job uses C on a connection')
  p.overlayOnly('C', 'job3')
  assert.not.ok(priv.has('C'), 'and the overlay job leaves it connected for a while (it keeps the overlay itself)')
})

test.run()
