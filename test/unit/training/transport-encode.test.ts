import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Uint8ArrayList } from 'uint8arraylist'
import { encodeTrainingMessage, decodeTrainingMessage } from '../../../src/training/transport.js'
import { dbc } from '../../../src/wire/gen/wire.js'

test('a large slice is encoded without copying its data, and decodes to the same message', () => {
  const data = new Uint8Array(100_000).map((_, i) => i * 7)
  const msg = { slice: { jobId: 'job-1', round: 3, slice: 2, phase: 1, codec: 0, length: 25_000, data, weight: 0.75 } }
  const enc = encodeTrainingMessage(msg)
  assert.ok(enc instanceof Uint8ArrayList, 'zero-copy form')
  const bytes = (enc as Uint8ArrayList).subarray()
  const a = decodeTrainingMessage(bytes)
  const b = decodeTrainingMessage(dbc.training.v1.TrainingMessage.encode(msg).finish())
  for (const m of [a, b]) {
    const s = m.slice!
    assert.equal([s.jobId, s.round, s.slice, s.phase, s.codec, s.length, s.weight], ['job-1', 3, 2, 1, 0, 25_000, 0.75])
    assert.equal(Buffer.compare(Buffer.from(s.data), Buffer.from(data)), 0)
  }
  // small messages keep the plain encoding, byte for byte
  const small = { slice: { jobId: 'j', round: 1, slice: 0, phase: 0, codec: 0, length: 2, data: new Uint8Array(8), weight: 1 } }
  assert.equal(encodeTrainingMessage(small), dbc.training.v1.TrainingMessage.encode(small).finish())
})

test.run()
