// The per-address gate for new identities: a token bucket per address, bans cost the address,
// known identities always pass (honest peers sharing an attacker's address keep working).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { IdentityGate, EVICTION_SCAN } from '../../../../src/core/routing/identity-gate.js'

test('an address may introduce `burst` new identities at once, then one per refill interval', () => {
  const g = new IdentityGate({ burst: 3, refillMs: 1000 })
  assert.equal(['a', 'b', 'c', 'd'].map(p => g.admit(0, '1.2.3.4', p)), ['new', 'new', 'new', 'refused'])
  assert.is(g.admit(999, '1.2.3.4', 'd'), 'refused')
  assert.is(g.admit(1000, '1.2.3.4', 'd'), 'new')
  assert.is(g.admit(1000, '1.2.3.4', 'e'), 'refused')
  assert.is(g.admit(1000, '5.6.7.8', 'e'), 'new', 'each address has its own bucket')
})

test('known identities always pass, whatever the address bucket holds', () => {
  const g = new IdentityGate({ burst: 1, refillMs: 1e9 })
  assert.is(g.admit(0, 'x', 'honest'), 'new')
  g.recordBan(0, 'x')
  assert.is(g.admit(1, 'x', 'honest'), 'known')
  assert.is(g.admit(1, 'x', 'fresh'), 'refused')
})

test('a ban puts the address into debt: fresh identities wait banCost refills per ban, at most maxDebt', () => {
  const g = new IdentityGate({ burst: 4, refillMs: 1000, banCost: 8, maxDebt: 10 })
  assert.is(g.admit(0, 'x', 'attacker'), 'new')
  g.recordBan(0, 'x') // 3 - 8 = -5
  assert.is(g.tokens(0, 'x'), -5)
  let refused = 0
  for (let i = 0; i < 30; i++) if (g.admit(0, 'x', `fresh${i}`) === 'refused') refused++
  assert.is(refused, 30)
  assert.is(g.admit(5_999, 'x', 'later'), 'refused')
  assert.is(g.admit(6_000, 'x', 'later'), 'new') // -5 + 6 = 1 token
  for (let i = 0; i < 5; i++) g.recordBan(6_000, 'x')
  assert.is(g.tokens(6_000, 'x'), -10, 'debt is bounded')
  assert.equal(g.restricted(6_000).map(r => [r.addr, r.bans]), [['x', 6]])
})

test('an address in debt may start one handshake a second; others always may', () => {
  const g = new IdentityGate({ burst: 2, refillMs: 1000, banCost: 8 })
  assert.ok(g.admitConnection(0, 'x'), 'an unknown address')
  assert.is(g.admit(0, 'x', 'attacker'), 'new')
  assert.ok(g.admitConnection(0, 'x'), 'not in debt')
  assert.ok(g.admitConnection(0, 'x'), 'not in debt: no rate')
  g.recordBan(0, 'x') // 1 - 8 = -7 tokens
  assert.ok(g.admitConnection(10, 'x'), 'the first in debt passes')
  assert.not.ok(g.admitConnection(500, 'x'), 'the next within a second does not')
  assert.ok(g.admitConnection(1010, 'x'))
  assert.ok(g.admitConnection(1010, 'y'), 'other addresses are not affected')
  assert.ok(g.admitConnection(8000, 'x') && g.admitConnection(8001, 'x'), 'out of debt: no rate again')
})

test('tables are bounded: the least recently used address and identity are forgotten', () => {
  const g = new IdentityGate({ burst: 1, refillMs: 1e9, maxAddresses: 2, maxKnown: 2 })
  g.admit(0, 'a', 'p1')
  g.admit(0, 'b', 'p2')
  g.admit(0, 'c', 'p3') // address a forgotten: its bucket is full again; identity p1 forgotten
  assert.is(g.isKnown('p1'), false)
  assert.is(g.tokens(0, 'a'), 1)
  assert.is(g.isKnown('p3'), true)
})

test('a full table forgets an address that is not in debt first: cycling through fresh addresses keeps a debt', () => {
  const g = new IdentityGate({ burst: 2, refillMs: 1000, banCost: 8, maxAddresses: 8 })
  g.admit(0, 'debtor', 'attacker')
  g.recordBan(0, 'debtor') // 1 - 8 = -7 tokens, and the least recently used address from here on
  for (let i = 0; i < 100; i++) g.admit(0, `fresh${i}`, `p${i}`)
  assert.is(g.tokens(0, 'debtor'), -7, 'the debt survived 100 fresh addresses through a table of 8')
  assert.is(g.admit(0, 'debtor', 'fresh-key'), 'refused')
  assert.is(g.tokens(0, 'fresh0'), 2, 'fresh addresses not in debt were the ones forgotten')
})

test('when every looked-at address is in debt, the one least in debt is forgotten (bounded work)', () => {
  const n = EVICTION_SCAN
  const g = new IdentityGate({ burst: 1, refillMs: 1000, banCost: 8, maxDebt: 64, maxAddresses: n })
  for (let i = 0; i < n; i++) {
    g.recordBan(0, `d${i}`)
    if (i !== 5) g.recordBan(0, `d${i}`) // d5 owes 7 tokens, the others 15
  }
  g.admit(0, 'new', 'p') // the table is full of debtors: d5 goes
  assert.is(g.tokens(0, 'd5'), 1, 'forgotten: a full bucket again')
  for (let i = 0; i < n; i++) if (i !== 5) assert.is(g.tokens(0, `d${i}`), -15, `d${i} keeps its debt`)
})

test.run()
