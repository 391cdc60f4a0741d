// The explain line for candidates that gave no offer (user16 #5): tallied across rounds, a few
// providers by name with their latest reason, the rest counted only (bounded memory).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { OfferSilence, SILENT_EXAMPLES } from '../../../src/jobs/offer-silence.js'
import { placementLines } from '../../../src/cli/job.js'

test('rounds are tallied; only SILENT_EXAMPLES providers are named; explain prints them', () => {
  const s = new OfferSilence()
  assert.is(s.summary(), undefined, 'nothing asked: nothing to say')
  s.record({ asked: 3, silent: [{ provider: 'C', reason: 'no answer within 5 s' }] })
  s.record({ asked: 3, silent: [{ provider: 'C', reason: 'the stream was reset' }] })
  for (let i = 0; i < 100; i++) s.record({ asked: 2, silent: [{ provider: `P${i}`, reason: 'x' }] })
  const sum = s.summary()
  assert.is(sum?.asked, 206)
  assert.is(sum?.noAnswer, 102)
  assert.is(sum?.examples.length, SILENT_EXAMPLES)
  assert.equal(sum?.examples[0], { provider: 'C', times: 2, reason: 'the stream was reset' })
  const text = placementLines({ tasks: 10, placedTasks: 10, offers: 2, usableOffers: 2, offersUsed: 2, candidates: sum })
  assert.match(text, /^ {2}offer requests: 206 sent, 102 not answered: C x2 \(the stream was reset\); P0 \(x\); P1 \(x\); P2 \(x\); and others$/m)
  // an older node's explain (no candidates): no line
  assert.not.match(placementLines({ tasks: 1, placedTasks: 1, offers: 1, usableOffers: 1, offersUsed: 1 }), /offer requests/)
})

test.run()
