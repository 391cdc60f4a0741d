// Review s11 L8: the answer to a lease request (an offer) or a voucher is a few hundred bytes, but
// it was read with the result frame limit (16 MiB): any candidate, with no lease, could put 16 MiB
// per answer into the node's outbound read budget for the offer round. Now such answers are read
// with TASK_ANSWER_MAX_FRAME (64 KiB): a 1 MiB offer fails that request (no offer from that peer,
// as for any bad answer; not charged: streams this node opened carry no charge) and never holds
// more than the limit. Real libp2p hosts on 127.0.0.1.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { TASK_PROTOCOL, TASK_ANSWER_MAX_FRAME } from '../../src/net/tasks.js'
import { FramedStream } from '../../src/net/framed.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { MiB, rig, tcpHost } from './lease-budget-rig.js'
import type { Host } from '../../src/net/host.js'

const TM = dbc.task.v1.TaskMessage

/** A candidate that answers every request with an offer (or a voucher) whose signature field is `pad` bytes. */
async function answering (seed: number, pad: number): Promise<Host> {
  const host = await tcpHost(seed)
  await host.handle(TASK_PROTOCOL, async (stream: Stream) => {
    const f = new FramedStream(stream, { maxFrameBytes: 64 * 1024 })
    const m = TM.decode(await f.readRequired())
    const signature = new Uint8Array(pad).fill(7)
    await f.write(TM.encode(m.voucher != null ? { voucher: { ...m.voucher, signature } } : { offer: { offerId: new Uint8Array([seed]), provider: host.peerId.toMultihash().bytes, slots: 1, signature } }).finish())
    await f.close().catch(() => {})
  }, { runOnLimitedConnection: true })
  return host
}

test('a 1 MiB offer answer is refused (no offer from that candidate, nobody charged); a small one is taken', async () => {
  const r = await rig({})
  const big = await answering(41, MiB)
  const small = await answering(42, 200)
  try {
    for (const p of [big, small]) await r.submitter.dial(p.getMultiaddrs()[0])
    const offers = await r.tr.requestOffers({ jobId: new Uint8Array(32), slots: 1, executor: 'wasm' }, {})
    const from = offers.map(o => o.view.provider)
    console.log(`  offers from: ${JSON.stringify(from.map(x => x === big.peerId.toString() ? 'big' : 'small'))}; outbound ${JSON.stringify(r.guard.outbound.status())}`)
    assert.equal(from, [small.peerId.toString()], 'only the small answer is an offer')
    assert.ok(r.guard.outbound.stats.peakBytes <= TASK_ANSWER_MAX_FRAME + 64 * 1024, `held at most the answer limit and a chunk (peak ${r.guard.outbound.stats.peakBytes})`)
    assert.equal(r.charges, [])
    // a voucher's answer: the same limit
    const v = { escrowId: new Uint8Array(32), provider: new Uint8Array(20), cumulative: new Uint8Array([1]), receiptsRoot: new Uint8Array(32), receiptCount: 1, signature: new Uint8Array(65) }
    await assert.not.throws(async () => { await r.tr.sendVoucher(small.peerId.toString(), v) })
    let err: Error | undefined
    await r.tr.sendVoucher(big.peerId.toString(), v).catch((e: Error) => { err = e })
    assert.ok(err !== undefined, 'a 1 MiB voucher answer is refused')
    assert.match(err.message, /frame|large|limit/i)
  } finally {
    await r.stop()
    await Promise.all([big, small].map(async h => { await h.stop() }))
  }
})

test('a frame after the answer is not held: the request stream refuses the next non-empty frame', async () => {
  const r = await rig({})
  const stuffer = await tcpHost(43)
  await stuffer.handle(TASK_PROTOCOL, async (stream: Stream) => {
    const f = new FramedStream(stream, { maxFrameBytes: 64 * 1024 })
    await f.readRequired()
    await f.write(TM.encode({ offer: { offerId: new Uint8Array([43]), provider: stuffer.peerId.toMultihash().bytes, slots: 1 } }).finish())
    await f.write(new Uint8Array(32 * 1024).fill(1)) // more, and the stream stays open
  }, { runOnLimitedConnection: true })
  try {
    await r.submitter.dial(stuffer.getMultiaddrs()[0])
    const offers = await r.tr.requestOffers({ jobId: new Uint8Array(32), slots: 1, executor: 'wasm' }, {})
    assert.is(offers.length, 1)
    await new Promise(resolve => setTimeout(resolve, 300))
    console.log(`  outbound after the round: ${JSON.stringify(r.guard.outbound.status())}`)
    // before: the 32 KiB frame stayed held (decoded, unread) until the stream ended
    assert.ok(r.guard.outbound.bufferedBytes() < 1024, `held ${r.guard.outbound.bufferedBytes()}`)
  } finally {
    await r.stop()
    await stuffer.stop()
  }
})

test.run()
