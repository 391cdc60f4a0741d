// The relay channel's ack keys (src/net/overlay/relay-frames.ts): one number per (message id, path
// id) without a hex string, exact in the path id, checked against the full id by ackAnswers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ackKey, ackAnswers } from '../../../src/net/overlay/relay-frames.js'
import { dbc } from '../../../src/wire/gen/wire.js'

const id = (...head: number[]): Uint8Array => { const b = new Uint8Array(16).fill(0x5a); b.set(head); return b }
const ack = (messageId: Uint8Array): dbc.envelope.v1.Ack => dbc.envelope.v1.Ack.create({ messageId, pathId: 0, status: 1 })

test('every path id below 8192 and every 40-bit id prefix gets its own exact number', () => {
  const top = id(0xff, 0xff, 0xff, 0xff, 0xff)
  const keys = new Set<number | string>()
  for (const m of [id(0, 0, 0, 0, 0), id(1), id(0, 0, 0, 0, 1), id(0xff, 0xff, 0xff, 0xff, 0xfe), top]) {
    for (const p of [0, 1, 2, 8190, 8191]) {
      const k = ackKey(m, p)
      assert.type(k, 'number')
      assert.ok(Number.isSafeInteger(k), `${String(k)} is exact`)
      keys.add(k)
    }
  }
  assert.is(keys.size, 25, 'no two alike')
  assert.is(ackKey(top, 8191), Number.MAX_SAFE_INTEGER)
})

test('ids that share the first 5 bytes share a key, and ackAnswers tells them apart', () => {
  const a = id(1, 2, 3, 4, 5, 6); const b = id(1, 2, 3, 4, 5, 7)
  assert.is(ackKey(a, 3), ackKey(b, 3))
  assert.ok(ackAnswers(ack(a), a))
  assert.not.ok(ackAnswers(ack(b), a))
  assert.not.ok(ackAnswers(ack(a.subarray(0, 15)), a), 'a shorter id')
  assert.not.ok(ackAnswers(ack(a), undefined), 'no check: not an answer')
})

test('short ids and path ids from 8192 (never ours) still get distinct keys', () => {
  assert.is(ackKey(new Uint8Array(0), 0), 0)
  assert.is(ackKey(new Uint8Array([7]), 1), 7 * 8192 + 1)
  const far = ackKey(id(9), 8192)
  assert.is(far, `${Buffer.from(id(9)).toString('hex')}/8192`)
  assert.is.not(ackKey(id(9), 0xffffffff), far)
})

test.run()
