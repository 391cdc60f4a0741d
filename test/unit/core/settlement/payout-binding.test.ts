// PayoutBinding (src/core/settlement/payout-binding.ts): the digest is viem's EIP-712 hash of the
// same typed data; a binding proves the address only for its peer, chain and contract; nothing
// a stranger sends makes the check throw.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { hashTypedData } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { checkPayoutBinding, domainOfTerms, payoutBindingDigest, payoutBindingTypedData } from '../../../../src/core/settlement/payout-binding.js'
import { bytesFromHex } from '../../../../src/core/settlement/hex.js'
import type { VoucherDomain } from '../../../../src/core/settlement/voucher.js'

const owner = privateKeyToAccount(`0x${'45'.repeat(32)}`)
const stranger = privateKeyToAccount(`0x${'46'.repeat(32)}`)
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }
const PEER = new Uint8Array([0, 36, 8, 1, 18, 32, 1, 2, 3])
const OTHER_PEER = new Uint8Array([0, 36, 8, 1, 18, 32, 9, 9, 9])
const sign = async (who = owner, peer = PEER, d = DOMAIN): Promise<Uint8Array> => bytesFromHex(await who.signTypedData(payoutBindingTypedData(peer, d)))

test('the digest is the EIP-712 hash viem signs', () => {
  assert.is(`0x${Buffer.from(payoutBindingDigest(PEER, DOMAIN)).toString('hex')}`, hashTypedData(payoutBindingTypedData(PEER, DOMAIN)))
})

test('a binding proves its address for its peer, chain and contract only', async () => {
  const sig = await sign()
  const me = owner.address
  assert.equal(checkPayoutBinding(PEER, me, sig, DOMAIN), { ok: true, payout: me.toLowerCase() })
  assert.ok(checkPayoutBinding(PEER, me.toLowerCase(), sig, DOMAIN).ok, 'address case does not matter')
  const refused = (peer: Uint8Array, payout: string, b: Uint8Array | undefined, d = DOMAIN): string => {
    const c = checkPayoutBinding(peer, payout, b, d)
    assert.is(c.ok, false)
    return c.ok ? '' : `${c.code}: ${c.reason}`
  }
  assert.match(refused(OTHER_PEER, me, sig), /^PAYOUT_NOT_BOUND: .*signed by 0x/, 'another peer copying the binding')
  assert.match(refused(PEER, me, sig, { ...DOMAIN, chainId: 1 }), /^PAYOUT_NOT_BOUND/, 'another chain')
  assert.match(refused(PEER, me, sig, { ...DOMAIN, verifyingContract: `0x${'d'.repeat(40)}` }), /^PAYOUT_NOT_BOUND/, 'another contract')
  assert.match(refused(PEER, me, await sign(stranger)), /^PAYOUT_NOT_BOUND/, 'signed by another key')
  assert.match(refused(PEER, me, undefined), /no payout binding/)
  assert.match(refused(PEER, me, new Uint8Array()), /no payout binding/)
  assert.match(refused(PEER, me, sig.subarray(0, 64)), /64 bytes/)
  assert.match(refused(PEER, 'not-an-address', sig), /20-byte/)
  assert.match(refused(new Uint8Array(), me, sig), /no provider/)
  const badV = sig.slice(); badV[64] = 5
  assert.match(refused(PEER, me, badV), /malformed/)
  const highS = sig.slice(); highS.fill(0xff, 32, 64)
  assert.match(refused(PEER, me, highS), /malformed/)
})

test('random bytes never throw', () => {
  for (let i = 0; i < 500; i++) {
    const c = checkPayoutBinding(randomBytes(i % 40), `0x${randomBytes(20).toString('hex')}`, randomBytes(i % 3 === 0 ? 65 : i % 70), DOMAIN)
    assert.is(c.ok, false)
  }
})

test('the domain of payment terms', () => {
  assert.equal(domainOfTerms({ chainId: 31337, contract: new Uint8Array(20).fill(0xcc) }), DOMAIN)
  assert.is(domainOfTerms({ chainId: 31337, contract: new Uint8Array(19) }), undefined)
  assert.is(domainOfTerms({ chainId: 0, contract: new Uint8Array(20) }), undefined)
  assert.is(domainOfTerms(undefined), undefined)
})


test('a binding checked good again is good (held), and nothing held passes for other inputs: a byte of the binding or the peer changed in place, another payout, chain or contract', async () => {
  const sig = await sign()
  const me = owner.address
  for (let i = 0; i < 3; i++) assert.equal(checkPayoutBinding(PEER, me, sig, DOMAIN), { ok: true, payout: me.toLowerCase() })
  const peer = Uint8Array.from(PEER)
  assert.ok(checkPayoutBinding(peer, me, sig, DOMAIN).ok)
  peer[peer.length - 1] ^= 1
  assert.not.ok(checkPayoutBinding(peer, me, sig, DOMAIN).ok, 'the same array, another peer')
  const b = Uint8Array.from(sig)
  assert.ok(checkPayoutBinding(PEER, me, b, DOMAIN).ok)
  for (const i of [0, 31, 32, 63]) {
    b[i] ^= 1
    assert.not.ok(checkPayoutBinding(PEER, me, b, DOMAIN).ok, `binding byte ${i} changed`)
    b[i] ^= 1
  }
  assert.not.ok(checkPayoutBinding(PEER, stranger.address, sig, DOMAIN).ok)
  assert.not.ok(checkPayoutBinding(PEER, me, sig, { ...DOMAIN, chainId: 31338 }).ok)
  assert.not.ok(checkPayoutBinding(PEER, me, sig, { ...DOMAIN, verifyingContract: `0x${'e'.repeat(40)}` }).ok)
  assert.ok(checkPayoutBinding(PEER, me, b, DOMAIN).ok)
})
test.run()
