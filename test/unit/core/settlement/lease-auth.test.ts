// LeaseAuth (src/core/settlement/lease-auth.ts): the digest is viem's EIP-712 hash of the same
// typed data, and recovery names the signer only for this job, this holder and this domain.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hashTypedData } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { holderHash, leaseAuthDigest, leaseAuthSigner, leaseAuthTypedData } from '../../../../src/core/settlement/lease-auth.js'
import { bytesFromHex } from '../../../../src/core/settlement/hex.js'
import type { VoucherDomain } from '../../../../src/core/settlement/voucher.js'

const payer = privateKeyToAccount(`0x${'44'.repeat(32)}`)
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }
const JOB = `0x${'ab'.repeat(32)}` as const
const HOLDER = new Uint8Array([0, 36, 8, 1, 18, 32, 1, 2, 3])

test('the digest is the EIP-712 hash viem signs', () => {
  const td = leaseAuthTypedData(JOB, HOLDER, DOMAIN)
  assert.is(td.message.holder, holderHash(HOLDER))
  assert.is(`0x${Buffer.from(leaseAuthDigest(JOB, HOLDER, DOMAIN)).toString('hex')}`, hashTypedData(td))
})

test('the signer is recovered only for its job, holder and domain', async () => {
  const sig = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(JOB, HOLDER, DOMAIN)))
  assert.is(leaseAuthSigner(JOB, HOLDER, sig, DOMAIN), payer.address.toLowerCase())
  assert.is.not(leaseAuthSigner(JOB, new Uint8Array([9, 9]), sig, DOMAIN), payer.address.toLowerCase(), 'another holder')
  assert.is.not(leaseAuthSigner(`0x${'cd'.repeat(32)}`, HOLDER, sig, DOMAIN), payer.address.toLowerCase(), 'another job')
  assert.is.not(leaseAuthSigner(JOB, HOLDER, sig, { ...DOMAIN, chainId: 1 }), payer.address.toLowerCase(), 'another chain')
  assert.is(leaseAuthSigner(JOB, HOLDER, sig.subarray(0, 64), DOMAIN), undefined, 'not 65 bytes')
  const badV = sig.slice(); badV[64] = 5
  assert.is(leaseAuthSigner(JOB, HOLDER, badV, DOMAIN), undefined, 'v not 27/28')
})

test('a signer held from an earlier recovery answers only the very same inputs (bytes changed in place, another contract: recovered again)', async () => {
  const holder = new Uint8Array([0, 36, 8, 1, 18, 32, 7, 7, 7])
  const sig = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(JOB, holder, DOMAIN)))
  const me = payer.address.toLowerCase()
  for (let k = 0; k < 3; k++) assert.is(leaseAuthSigner(JOB, holder, sig, DOMAIN), me)
  holder[8] = 8 // the same buffer, changed after its signer was held
  assert.is.not(leaseAuthSigner(JOB, holder, sig, DOMAIN), me, 'another holder in the same buffer')
  holder[8] = 7
  sig[10] ^= 1
  assert.is.not(leaseAuthSigner(JOB, holder, sig, DOMAIN), me, 'another signature in the same buffer')
  sig[10] ^= 1
  assert.is.not(leaseAuthSigner(JOB, holder, sig, { ...DOMAIN, verifyingContract: `0x${'d'.repeat(40)}` }), me, 'another contract')
  assert.is(leaseAuthSigner(JOB, holder, sig, DOMAIN), me)
})

test.run()
