// The daemon's training group picker (OverlaySubsystem.trainingGroup) leaves out the peers the
// training subsystem names busy (they run this node's built-in job): review s13 M2, where it
// dropped the list and picked job A's group again, so a second job was refused PEERS_BUSY while
// other peers sat idle.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { OverlaySubsystem } from '../../../src/node/overlay-subsystem.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'

test('trainingGroup picks among the peers not excluded', async () => {
  const ids = await Promise.all([0, 1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
  const sub = new OverlaySubsystem() as any
  // the parts trainingGroup reads: connected peers, capability records (none) and positions (none)
  sub.overlay = { capabilities: { cache: { get: () => undefined } }, known: new Map() }
  sub.ctx = { host: { getPeers: () => ids }, log: { info: () => {} } }
  const spec = parseTrainingSpec({ groupSize: 2 })
  const busy = ids.slice(0, 2).map(String)
  const group: string[] = await sub.trainingGroup(spec, async () => true, busy)
  assert.is(group.length, 2)
  assert.ok(group.every(p => !busy.includes(p)), `picked ${group}`)
  assert.is((await sub.trainingGroup(spec, async () => true)).length, 2)
})

test.run()
