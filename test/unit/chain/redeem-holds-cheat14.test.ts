// Review s14 (cheat) F1, the redeem loop's side: every voucher the policy holds back (below ten
// redeems' gas, or never worth one) or that waits on a used-up escrow cost two chain reads
// (redeemed, escrow) on every pass, every 2 s, for as long as it stayed so: a provider holding many
// small vouchers (one per 1-wei escrow a payer opened, or the dust of old jobs) spent its redeem
// loop, and its RPC allowance, on them, and redeemed its honest vouchers later. Now a held voucher
// is read again after HELD_RECHECK_MS, sooner when its job's deadline or refund margin comes first,
// and at once when a newer voucher raises it or the operator forces a redeem.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'
import { Outbox } from '../../../src/chain/outbox.js'
import { VoucherBook } from '../../../src/chain/vouchers.js'
import { redeemTick, HELD_RECHECK_MS, type HeldVoucher, type RedeemerDeps } from '../../../src/chain/redeemer.js'
import type { EscrowView } from '../../../src/chain/types.js'
import { RedeemLoop } from '../../../src/chain/redeem-loop.js'

const ME = `0x${'ee'.repeat(20)}` as const
const PAYER = `0x${'11'.repeat(20)}` as const
const DOMAIN = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` as const }
const job = (n: number): `0x${string}` => `0x${n.toString(16).padStart(64, '0')}`
const SIG = `0x${'ab'.repeat(65)}` as const

function rig (vouchers: number, escrowOf: (id: string) => Partial<EscrowView> = () => ({})) {
  const store = openStore(':memory:')
  const book = new VoucherBook(store)
  for (let n = 1; n <= vouchers; n++) book.accept({ voucher: { escrowId: job(n), provider: ME, cumulative: 1n, receiptsRoot: `0x${'00'.repeat(32)}`, receiptCount: 1 }, signature: SIG }, { payer: PAYER, domain: DOMAIN }, 1)
  let clock = 1_000_000
  const reads = { n: 0 }
  const recheck = new Map<string, HeldVoucher>()
  const deps = (force = false): RedeemerDeps => ({
    conn: {} as never,
    outbox: new Outbox(store),
    book,
    queue: {} as never,
    contract: DOMAIN.verifyingContract,
    domain: DOMAIN,
    account: ME,
    confirmations: 1,
    now: () => clock,
    escrow: async (id) => { reads.n++; return { chainJobId: id, payer: PAYER, escrow: 1n, paid: 0n, unspent: 1n, deadline: 4_000_000_000, closedAt: 0, disputeWindow: 3600, refunded: false, ...escrowOf(id) } },
    redeemed: async () => { reads.n++; return 0n },
    settled: new Map(),
    recheck,
    holds: new Map(),
    policy: { minGasMultiple: 10 },
    force,
    gasCost: async () => 10n ** 12n,
    chainTime: async () => Math.floor(clock / 1000)
  })
  return { book, reads, deps, tick: (ms: number) => { clock += ms } }
}

test('vouchers held below their gas are not read again on every pass', async () => {
  const r = rig(50)
  const first = await redeemTick(r.deps())
  assert.is(first.waiting, 50)
  assert.is(r.reads.n, 100, 'the first pass reads each voucher (redeemed + escrow)')
  for (let i = 0; i < 10; i++) {
    r.tick(2000)
    const again = await redeemTick(r.deps())
    assert.is(again.waiting, 50, 'still counted as waiting')
  }
  assert.is(r.reads.n, 100, 'ten more passes read nothing (was 100 reads a pass)')
  r.tick(HELD_RECHECK_MS)
  await redeemTick(r.deps())
  assert.is(r.reads.n, 200, 'read again after HELD_RECHECK_MS')
  // a newer voucher is read at once; force reads everything
  r.book.accept({ voucher: { escrowId: job(7), provider: ME, cumulative: 2n, receiptsRoot: `0x${'00'.repeat(32)}`, receiptCount: 2 }, signature: SIG }, { payer: PAYER, domain: DOMAIN }, 2)
  r.tick(2000)
  await redeemTick(r.deps())
  assert.is(r.reads.n, 202)
  r.tick(2000)
  await redeemTick(r.deps(true))
  assert.is(r.reads.n, 302)
})

test('a held voucher whose job ends soon is read again by then, and one blocked on a used-up escrow waits too', async () => {
  const r = rig(2, id => id === job(1) ? { deadline: 1_000_000 / 1000 + 10 } : { unspent: 0n })
  const first = await redeemTick(r.deps())
  assert.is(first.waiting, 1)
  assert.is(first.blocked.length, 1)
  r.tick(2000)
  const second = await redeemTick(r.deps())
  assert.is(second.blocked.length, 1, 'still reported blocked')
  assert.is(r.reads.n, 4, 'neither read on the next pass')
  r.tick(9000) // past the deadline (10 s): job 1 is final now and read again
  await redeemTick(r.deps())
  assert.is(r.reads.n, 6)
})

test('the loop\'s scheduled passes skip held vouchers; redeemNow (the operator) reads them all', async () => {
  const r = rig(20)
  const d = r.deps()
  const link = {
    connection: () => ({ kind: 'rpc', account: { address: ME }, publicClient: { estimateGas: async () => 60_000n, getGasPrice: async () => 10n ** 9n } }),
    ready: async () => DOMAIN.verifyingContract,
    domain: async () => DOMAIN,
    confirmations: () => 1,
    chainTime: async () => 1000,
    sendQueue: () => ({}),
    lastError: undefined
  }
  const loop = new RedeemLoop({ init: { redeemPolicy: { minGasMultiple: 10 } } as never, link: link as never, outbox: d.outbox, book: r.book, escrows: { escrow: d.escrow, redeemed: d.redeemed } as never, now: d.now })
  assert.is((await loop.pump(undefined, false, true))?.waiting, 20)
  assert.is(r.reads.n, 40)
  r.tick(2000)
  assert.is((await loop.pump(undefined, false, true))?.waiting, 20)
  assert.is(r.reads.n, 40, 'a scheduled pass reads no held voucher')
  await loop.pump(undefined, false)
  assert.is(r.reads.n, 80, 'a pass asked for (redeemNow) reads them all')
})

test.run()
