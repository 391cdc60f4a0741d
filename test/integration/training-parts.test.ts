// Slices in pipelined parts over real libp2p streams, cut by unequal bandwidths: the group still
// averages exactly (fp32), every member holds the same vector, and each member's measured send
// bandwidth comes out of the transport's stats.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../src/core/rng.js'
import { BandwidthEstimate } from '../../src/core/training/partition.js'
import type { Host } from '../../src/net/host.js'
import { makeHosts, AllReduceGroup } from './allreduce-hosts.js'

let hosts: Host[] = []
test.before(async () => { hosts = await makeHosts(4) })
test.after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })

test('4 members, 200k values in parts of 8192, slices by bandwidth: exact weighted average on every member', async () => {
  const length = 200_000
  const group = new AllReduceGroup(hosts, { length, codec: { kind: 'fp32' }, partValues: 8192 })
  await group.start()
  try {
    const rng = createRng(4)
    const weights = [1, 2, 3, 4]
    const bandwidths = [1e6, 4e6, 2e6, 8e6]
    for (let round = 0; round < 2; round++) {
      const vectors = weights.map(() => Float32Array.from({ length }, () => rng.next() * 2 - 1))
      const results = await group.round(round, vectors, { weights, bandwidths: round === 0 ? undefined : bandwidths })
      const sizes = results[0].sliceSizes
      if (round === 1) assert.ok(sizes[3] > 4 * sizes[0], `slices follow bandwidth: ${sizes.join(',')}`)
      else assert.equal(sizes, [50_000, 50_000, 50_000, 50_000])
      for (const r of results) {
        assert.not.ok(r.timedOut)
        assert.equal(r.missingSlices, [])
        assert.equal(r.sliceSizes, sizes)
        for (let k = 0; k < length; k++) {
          let s = 0
          for (let p = 0; p < 4; p++) s += vectors[p][k] * weights[p]
          if (r.vector[k] !== results[0].vector[k] || Math.abs(r.vector[k] - s / 10) > 1e-6) assert.unreachable(`round ${round} index ${k}: ${r.vector[k]} vs ${s / 10}`)
        }
      }
    }
    // parts were frames of their own: more frames than one per slice and phase
    const t = group.transports[0].stats
    assert.ok(t.framesSent > 2 * 3 * 2, `${t.framesSent} frames`)
    assert.ok(t.sendBusyMs > 0)
    const e = new BandwidthEstimate()
    e.observe(t.bytesSent, t.sendBusyMs)
    assert.ok((e.value ?? 0) > 0)
  } finally {
    await group.stop()
  }
})

test.run()
