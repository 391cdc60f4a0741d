// The demo's workload on one compute peer: an image rendered in tiles, one wasm task each,
// stitched back, equals the same image rendered as one task; every tile has a valid receipt.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { ComputePeer } from '../../src/compute/index.js'
import { MANDELBROT_MODULE_URL, planTiles, stitchTiles, encodeTileInput } from '../../src/compute/mandelbrot.js'
import { verifyReceipt } from '../../src/core/settlement/receipt.js'
import { createRng } from '../../src/core/rng.js'

test('tiles through the peer stitch into the single-task image', async () => {
  const peer = new ComputePeer({ secretKey: createRng(5).bytes(new Uint8Array(32)), cpuSlots: 2, benchmark: false, nvidiaSmi: '/nonexistent/nvidia-smi' })
  await peer.start()
  try {
    const code = new Uint8Array(readFileSync(MANDELBROT_MODULE_URL))
    const W = 200; const H = 150
    // A power-of-two step keeps every coordinate exact, so tile and whole compute the same bits.
    const view = { x0: -2.25, y0: -1.171875, step: 1 / 64, maxIterations: 200 }
    const tiles = planTiles(W, H, 64, view)
    assert.is(tiles.length, 12) // 4 x 3, ragged at the right and bottom edges
    let id = 0
    const done = await Promise.all(tiles.map(async tile => {
      const { result, receipt } = await peer.runTask({ taskId: new Uint8Array([++id]), code, input: tile.input, deadlineMs: 10_000, memoryLimitMib: 32 })
      assert.ok(result.ok, result.error)
      assert.ok(verifyReceipt(receipt, peer.peerId).ok)
      return { tile, rgba: result.output }
    }))
    const stitched = stitchTiles(W, H, done)
    const whole = await peer.runTask({ taskId: new Uint8Array([99]), code, input: encodeTileInput(view.x0, view.y0, view.step, W, H, view.maxIterations), deadlineMs: 10_000, memoryLimitMib: 32 })
    assert.ok(Buffer.from(stitched).equals(Buffer.from(whole.result.output)), 'stitched tiles differ from the whole image')
    // a real picture: both black (inside) and coloured pixels
    let black = 0
    for (let i = 0; i < stitched.length; i += 4) if (stitched[i] === 0 && stitched[i + 1] === 0 && stitched[i + 2] === 0) black++
    assert.ok(black > W * H * 0.05 && black < W * H * 0.9, `black pixels: ${black}`)
  } finally {
    await peer.stop()
  }
})

test.run()
