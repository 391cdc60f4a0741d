// A training member prices its rounds itself and is paid round by round like a grid provider
// (core/settlement/training.ts, src/training/invite-payment.ts, PaymentGate.admitRound):
// - the coordinator's deadline (a hostile `maxMs: 1`) does not lower the member's round price;
// - the member's floor, its longest measured round and its largest bill raise it;
// - a job whose maxPricePerHour is below the member's price is refused (PRICE_ABOVE_CAP);
// - rounds delivered beyond the credit without vouchers are refused PAYER_BEHIND, and a voucher
//   that catches up lets the member go on; the escrow is read again as work accrues.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { privateKeyToAccount } from 'viem/accounts'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { memberRoundPrice, priceAboveCap, DEFAULT_MIN_ROUND_S } from '../../../src/core/settlement/training.js'
import { taskPriceUnits, escrowKeyOf, uint256Bytes, type EscrowRead } from '../../../src/core/settlement/credit.js'
import { MemberPayments, roundPriceUnits, type InvitationGate } from '../../../src/training/invite-payment.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'
import { PaymentGate, type PaymentPort } from '../../../src/jobs/payment-gate.js'
import { voucherTypedData, type SignedVoucher, type VoucherDomain } from '../../../src/core/settlement/voucher.js'
import { leaseAuthTypedData } from '../../../src/core/settlement/lease-auth.js'
import { bytesFromHex } from '../../../src/core/settlement/hex.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

const PRICES = { priceGpuHour: 2, priceCpuHour: 0.05 }
const SPEC = { model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 10 }, groupSize: 2, rounds: 4, localSteps: 1 }
const MIN_ROUND_MS = 30_000

test('a hostile deadline.maxMs: 1 does not lower the member\'s round price; the floor, measured rounds and bills raise it', () => {
  const honest = roundPriceUnits(parseTrainingSpec(SPEC), { prices: PRICES, minRoundMs: MIN_ROUND_MS })
  const hostile = roundPriceUnits(parseTrainingSpec({ ...SPEC, deadline: { initialMs: 1, maxMs: 1 } }), { prices: PRICES, minRoundMs: MIN_ROUND_MS })
  assert.is(hostile.price, honest.price, 'the coordinator\'s deadline is no input')
  assert.is(hostile.roundMs, MIN_ROUND_MS)
  assert.is(honest.price, taskPriceUnits(PRICES, 0, 1, MIN_ROUND_MS), 'one core at the member\'s CPU price for its floor')
  assert.ok(honest.price > 0n)
  // the spec's own cap on prices does not lower it either
  assert.is(roundPriceUnits(parseTrainingSpec({ ...SPEC, maxPricePerHour: 0.000001 }), { prices: PRICES, minRoundMs: MIN_ROUND_MS }).price, honest.price)
  // GPUs: the member's GPU-hour price per GPU the job takes
  const gpu = roundPriceUnits(parseTrainingSpec({ ...SPEC, gpu: { count: 2 } }), { prices: PRICES, minRoundMs: MIN_ROUND_MS })
  assert.is(gpu.price, taskPriceUnits(PRICES, 2, 0, MIN_ROUND_MS))
  // a round measured longer than the floor raises the time; a bill above it raises the price
  const longer = memberRoundPrice({ prices: PRICES, gpus: 0, minRoundMs: MIN_ROUND_MS, longestMs: 4 * MIN_ROUND_MS })
  assert.is(longer.roundMs, 4 * MIN_ROUND_MS)
  assert.is(longer.price, taskPriceUnits(PRICES, 0, 1, 4 * MIN_ROUND_MS))
  assert.ok(longer.price > honest.price)
  assert.is(memberRoundPrice({ prices: PRICES, gpus: 0, minRoundMs: MIN_ROUND_MS, mostBilled: 10n * honest.price }).price, 10n * honest.price)
  // a zero or broken floor falls back to the default, never to nothing
  assert.is(memberRoundPrice({ prices: PRICES, gpus: 0, minRoundMs: 0 }).roundMs, DEFAULT_MIN_ROUND_S * 1000)
  assert.is(memberRoundPrice({ prices: PRICES, gpus: 0, minRoundMs: Number.NaN }).roundMs, DEFAULT_MIN_ROUND_S * 1000)
})

test('a job capping the hourly price below the member\'s is refused PRICE_ABOVE_CAP before any escrow read', async () => {
  assert.is(priceAboveCap(PRICES, 0, 0.05), undefined)
  assert.match(priceAboveCap(PRICES, 0, 0.01) ?? '', /asks 0\.05 DBC per hour for one core, above the job's maxPricePerHour of 0\.01 DBC/)
  assert.match(priceAboveCap(PRICES, 2, 3) ?? '', /asks 4 DBC per hour for 2 GPU\(s\)/)
  let asked = 0
  const gate: InvitationGate = { admitInvitation: async () => { asked++; return { ok: true } } }
  const m = new MemberPayments(() => gate, () => ({ prices: PRICES, minRoundMs: MIN_ROUND_MS }))
  const coordinator = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const r = await m.admitInvitation({ jobId: 'j1' }, parseTrainingSpec({ ...SPEC, maxPricePerHour: 0.01 }), coordinator)
  assert.is(r?.code, 'PRICE_ABOVE_CAP')
  assert.is(r?.charge, false)
  assert.is(asked, 0)
})

test('the invitation asks the gate with the member\'s own price, whatever the deadline', async () => {
  const seen: Array<{ price: bigint, roundMs: number }> = []
  const gate: InvitationGate = { admitInvitation: async (_t, _j, _c, price, roundMs) => { seen.push({ price, roundMs }); return { ok: true } } }
  const m = new MemberPayments(() => gate, () => ({ prices: PRICES, minRoundMs: MIN_ROUND_MS }))
  const coordinator = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  assert.is(await m.admitInvitation({ jobId: 'j1' }, parseTrainingSpec({ ...SPEC, deadline: { initialMs: 1, maxMs: 1 } }), coordinator), undefined)
  assert.equal(seen, [{ price: taskPriceUnits(PRICES, 0, 1, MIN_ROUND_MS), roundMs: MIN_ROUND_MS }])
  // no chain (no gate): nothing is checked, as for grid leases
  assert.is(await new MemberPayments(() => undefined, () => ({ prices: PRICES, minRoundMs: 1 })).admitRound('x'), undefined)
  // a round of a job never accepted here is refused
  assert.is((await m.admitRound('other'))?.code, 'NO_ESCROW')
})

// --- against the real payment gate, with a chain double ---

const payer = privateKeyToAccount(`0x${'11'.repeat(32)}`)
const PROVIDER = `0x${'ee'.repeat(20)}` as const
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }

class FakeChain implements PaymentPort {
  readonly address = PROVIDER
  escrows = new Map<string, EscrowRead>()
  reads = 0
  domain (): VoucherDomain { return DOMAIN }
  async escrow (key: string): Promise<EscrowRead | undefined> { this.reads++; return this.escrows.get(key) }
  async redeemed (): Promise<bigint> { return 0n }
  async acceptVoucher (_sv: SignedVoucher): Promise<void> {}
}

async function voucher (jobId: Uint8Array, cumulative: bigint): Promise<dbc.task.v1.IVoucher> {
  const v = { escrowId: escrowKeyOf(jobId, payer.address), provider: PROVIDER as `0x${string}`, cumulative, receiptsRoot: `0x${'00'.repeat(32)}` as const, receiptCount: 1 }
  const signature = await payer.signTypedData(voucherTypedData(v, DOMAIN))
  return { escrowId: bytesFromHex(v.escrowId), provider: bytesFromHex(PROVIDER), cumulative: uint256Bytes(cumulative), receiptsRoot: new Uint8Array(32), receiptCount: 1, signature: bytesFromHex(signature) }
}

test('rounds past the credit without vouchers are refused PAYER_BEHIND; a voucher lets the member go on; the escrow is read again', async () => {
  let clock = 1_000_000
  const chain = new FakeChain()
  const gate = new PaymentGate(chain, { creditTasks: 1, now: () => clock })
  const member = new MemberPayments(() => gate, () => ({ prices: PRICES, minRoundMs: MIN_ROUND_MS }), () => clock)
  const coordinatorId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const jobId = 'a1b2c3d4e5f60718'
  const jobBytes = new TextEncoder().encode(jobId)
  const key = escrowKeyOf(jobBytes, payer.address)
  const holderAuth = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(key, coordinatorId.toMultihash().bytes, DOMAIN)))
  const terms: dbc.task.v1.IPaymentTerms = { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(key), payer: bytesFromHex(payer.address), holderAuth }
  const ROUND = taskPriceUnits(PRICES, 0, 1, MIN_ROUND_MS)
  chain.escrows.set(key, { payer: payer.address.toLowerCase(), unspent: 10n * ROUND, refunded: false, closedAt: 0, deadline: 0, disputeWindow: 3600 })
  const spec = parseTrainingSpec({ ...SPEC, deadline: { initialMs: 1, maxMs: 1 } })
  assert.is(await member.admitInvitation({ jobId, payment: terms }, spec, coordinatorId.toString()), undefined)
  // round 0 and 1: unsigned work up to the credit (one round's price) is extended
  assert.is(await member.admitRound(jobId), undefined)
  member.delivered(jobId, 1000, ROUND / 2n)
  assert.is(await member.admitRound(jobId), undefined)
  member.delivered(jobId, 1000, ROUND / 2n)
  assert.is(await member.admitRound(jobId), undefined, 'exactly one round behind: within the credit')
  member.delivered(jobId, 1000, ROUND / 2n)
  const behind = await member.admitRound(jobId)
  assert.is(behind?.code, 'PAYER_BEHIND')
  assert.is(behind?.charge, false, 'a late voucher is no offence')
  assert.match(behind?.reason ?? '', /^payer is 0\.0006249\d* DBC behind on job 0x[0-9a-f]{8}…/)
  const row = gate.status().find(r => r.chainJobId === key)
  assert.ok(row !== undefined && row.refusals === 1 && row.lastRefusal?.startsWith('PAYER_BEHIND') === true, JSON.stringify(row))
  assert.is(gate.ledgerOf(key)?.delivered, 3n * (ROUND / 2n))
  // the payer catches up: the member goes on
  await gate.acceptVoucher(await voucher(jobBytes, 3n * (ROUND / 2n)))
  assert.is(await member.admitRound(jobId), undefined)
  // a round measured longer than the floor raises the price the escrow must cover: the escrow is read again
  member.delivered(jobId, 8 * MIN_ROUND_MS, ROUND)
  await gate.acceptVoucher(await voucher(jobBytes, 3n * (ROUND / 2n) + ROUND))
  chain.escrows.set(key, { payer: payer.address.toLowerCase(), unspent: 3n * ROUND, refunded: false, closedAt: 0, deadline: 0, disputeWindow: 3600 })
  clock += 10_000
  const reads = chain.reads
  const small = await member.admitRound(jobId)
  assert.is(small?.code, 'ESCROW_TOO_SMALL', 'the next round is priced at 8 floors now, more than the escrow holds')
  assert.ok(chain.reads > reads, 'the escrow was read again')
  // a job forgotten (its worker ended) gets no more rounds
  member.forget(jobId)
  assert.is((await member.admitRound(jobId))?.code, 'NO_ESCROW')
})

test.run()
