// `dbc earnings --redeem` says what the redeem pass did (found by helper user: it printed the same
// table as without the flag, so "nothing was worth its gas" looked like nothing happened at all).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { redeemSummary } from '../../../src/cli/chain.js'

test('a pass that sent nothing says why in counts; one that redeemed names its transactions', () => {
  assert.is(redeemSummary({ confirmed: [], redeemable: 0, blocked: [], waiting: 0, notWorth: 2 }), 'redeem: nothing sent; 2 voucher(s) pay less than one redeem\'s gas: not sent (each job\'s note below says why)')
  assert.is(redeemSummary({ confirmed: [{ txHash: '0xabc' }], redeemable: 0, blocked: [{ chainJobId: '0x1', reason: 'refunded' }] }), 'redeem: 1 redeem transaction(s) confirmed (0xabc); 1 voucher(s) cannot be redeemed (each job\'s note below says why)')
  assert.is(redeemSummary({ confirmed: [], redeemable: 0, blocked: [] }), 'redeem: nothing pending to redeem')
})

test.run()
