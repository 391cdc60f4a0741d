// The provider's redeem policy: never spend more gas than a voucher pays, never miss the refund time.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { planRedeems, redeemMarginSec, type RedeemCandidate } from '../../../../src/core/settlement/redeem-policy.js'
import { bridgeInitFromSettings, parseChainSettings } from '../../../../src/chain/settings.js'

const GAS = 80_000n * 1_000_000_000n // 80k gas at 1 gwei
const policy = { minGasMultiple: 10 }
const NOW = 1_000_000
const open = (key: string, payable: bigint, extra: Partial<RedeemCandidate> = {}): RedeemCandidate => ({ key, payable, deadline: NOW + 86_400, closedAt: 0, disputeWindow: 3600, ...extra })

test('an open job: redeemed once worth 10x the gas, not before', () => {
  const p = planRedeems([open('small', GAS * 9n), open('big', GAS * 10n)], { nowSec: NOW, gasCost: GAS }, policy)
  assert.equal(p.redeem, [{ key: 'big', why: 'worth' }])
  assert.equal(p.waiting.map(w => w.key), ['small'])
  assert.equal(p.notWorth, [])
})

test('a closed job: whatever beats the gas is redeemed; less is reported as not worth redeeming', () => {
  const p = planRedeems([open('a', GAS + 1n, { closedAt: NOW - 5 }), open('b', GAS, { closedAt: NOW - 5 }), open('c', GAS * 2n)], { nowSec: NOW, gasCost: GAS }, policy)
  assert.equal(p.redeem, [{ key: 'a', why: 'final' }])
  assert.equal(p.notWorth.map(n => [n.key, n.payable]), [['b', GAS]])
  assert.ok(p.notWorth[0].reason.includes('not worth redeeming'))
  assert.equal(p.waiting.map(w => w.key), ['c'])
})

test('past the deadline counts as final even when not closed', () => {
  const p = planRedeems([open('late', GAS * 2n, { deadline: NOW })], { nowSec: NOW, gasCost: GAS }, policy)
  assert.equal(p.redeem, [{ key: 'late', why: 'final' }])
})

test('the refund time near: redeemed within min(window / 2, 10 min) of it, not earlier', () => {
  // deadline in the future, closedAt unset; refund at deadline + window
  const deadline = NOW + 1000
  const c = open('j', GAS * 2n, { deadline, disputeWindow: 3600 })
  assert.is(redeemMarginSec(3600), 600)
  assert.is(redeemMarginSec(60), 30)
  // still before the deadline: 1000 + 3600 - 600 s away from the margin
  assert.equal(planRedeems([c], { nowSec: NOW, gasCost: GAS }, policy).redeem, [])
  // a deadline extension aside, the deadline passes first (final); a closed job with a short window:
  const closed = open('k', GAS * 2n, { closedAt: NOW - 100, deadline: NOW + 86_400, disputeWindow: 120 })
  assert.equal(planRedeems([closed], { nowSec: NOW, gasCost: GAS }, policy).redeem, [{ key: 'k', why: 'refund-near' }])
})

test('within the margin of the refund time the reason is refund-near (deadline 40 s behind, 60 s window)', () => {
  const c = open('j', GAS * 3n, { deadline: NOW - 40, disputeWindow: 60 })
  assert.equal(planRedeems([c], { nowSec: NOW, gasCost: GAS }, policy).redeem, [{ key: 'j', why: 'refund-near' }])
})

test('asked by the operator: what beats the gas goes now; batching keeps every due voucher in one plan', () => {
  const p = planRedeems([open('a', GAS * 2n), open('b', GAS * 20n), open('c', GAS / 2n)], { nowSec: NOW, gasCost: GAS, force: true }, policy)
  assert.equal(p.redeem, [{ key: 'a', why: 'asked' }, { key: 'b', why: 'worth' }])
  assert.equal(p.notWorth.map(n => n.key), ['c'])
})

test('multiple 0 redeems every voucher with value; nothing to pay is skipped; a bad multiple throws', () => {
  const p = planRedeems([open('a', 1n), open('z', 0n)], { nowSec: NOW, gasCost: GAS }, { minGasMultiple: 0 })
  assert.equal(p.redeem, [{ key: 'a', why: 'worth' }])
  assert.throws(() => planRedeems([], { nowSec: NOW, gasCost: GAS }, { minGasMultiple: -1 }), /minGasMultiple/)
})

test('config: chain.minRedeemGasMultiple defaults to 10, reaches the bridge, and a negative one is a ConfigError', () => {
  const store = {} as never
  assert.equal(bridgeInitFromSettings(parseChainSettings({}), { store, dataDir: '/x' }).redeemPolicy, { minGasMultiple: 10 })
  assert.equal(bridgeInitFromSettings(parseChainSettings({ minRedeemGasMultiple: 0 }), { store, dataDir: '/x' }).redeemPolicy, { minGasMultiple: 0 })
  assert.throws(() => parseChainSettings({ minRedeemGasMultiple: -1 }), /chain\.minRedeemGasMultiple/)
})

test.run()
