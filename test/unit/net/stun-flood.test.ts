// The STUN responder's cheap checks come before its decode (review s11 M3): a flood of well-formed
// binding requests over the rate limit, from one source or from many once the global bucket is
// empty, is cut after the fixed-header check and the bucket lookups, without decoding the request
// or building a response (c2ec22f decoded and built first: ~3x the CPU per flooding packet);
// header-valid garbage spends its own source's tokens only, never the global bucket's (s10 L1);
// garbage from forged sources is bounded by a global decode bucket (s11 L10).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import stun from '@msimerson/stun'
import { StunResponder } from '../../../src/net/stun/index.js'

function request (): Buffer {
  const m = Buffer.alloc(20)
  m.writeUInt16BE(0x0001, 0); m.writeUInt16BE(0, 2); m.writeUInt32BE(0x2112a442, 4); randomBytes(12).copy(m, 8)
  return m
}

/** Header-valid, but its XOR-MAPPED-ADDRESS attribute is 4 bytes: the full check refuses it. */
function garbage (): Buffer {
  const m = Buffer.concat([request(), Buffer.from([0x00, 0x20, 0x00, 0x04, 1, 2, 3, 4])])
  m.writeUInt16BE(8, 2)
  return m
}

/** Counts the library's decodes while `fn` runs. */
async function decodes (fn: () => Promise<void>): Promise<number> {
  const real = stun.decode
  let n = 0
  ;(stun as any).decode = (...a: any[]) => { n++; return (real as any)(...a) }
  try { await fn() } finally { (stun as any).decode = real }
  return n
}

async function responder (init: Record<string, number>): Promise<StunResponder> {
  // a fixed clock: no token comes back during the test
  return await StunResponder.start({ port: 0, host: '127.0.0.1', now: () => 1000, ...init })
}

test('1,000 valid requests from one source: its burst is decoded and answered, the rest cut before the decode', async () => {
  const r = await responder({ burst: 8, globalPerSecond: 500 })
  try {
    const n = await decodes(async () => { for (let i = 0; i < 1000; i++) r.onMessage(request(), { address: '127.0.0.1', port: 9 }) })
    assert.is(r.stats.answered, 8)
    assert.is(r.stats.limited, 992)
    assert.is(n, 8, `decodes: ${n}`)
  } finally { await r.stop() }
})

test('once the global bucket is empty, requests from fresh sources are cut before the decode', async () => {
  const r = await responder({ burst: 8, globalPerSecond: 4 })
  try {
    const n = await decodes(async () => { for (let i = 0; i < 100; i++) r.onMessage(request(), { address: `127.0.0.${i + 1}`, port: 9 }) })
    assert.is(r.stats.answered, 4)
    assert.is(r.stats.limited, 96)
    assert.is(n, 4, `decodes: ${n}`)
  } finally { await r.stop() }
})

test('header-valid garbage from one source spends its own tokens only: decoded at most its burst, the global bucket untouched', async () => {
  const r = await responder({ burst: 8, globalPerSecond: 4 })
  try {
    const n = await decodes(async () => { for (let i = 0; i < 1000; i++) r.onMessage(garbage(), { address: '127.0.0.66', port: 9 }) })
    assert.is(n, 8, `decodes: ${n}`)
    assert.is(r.stats.dropped, 8); assert.is(r.stats.limited, 992); assert.is(r.stats.answered, 0)
    // every global token is still there: four other sources are answered
    for (let i = 0; i < 4; i++) r.onMessage(request(), { address: `127.0.1.${i + 1}`, port: 9 })
    assert.is(r.stats.answered, 4)
    // and the garbage's source is out of tokens for a well-formed request too (it spent them)
    r.onMessage(request(), { address: '127.0.0.66', port: 9 })
    assert.is(r.stats.answered, 4)
  } finally { await r.stop() }
})

test('header-valid garbage from a forged new source each packet: decodes bounded by the global decode bucket (review s11 L10)', async () => {
  let t = 1000
  const r = await StunResponder.start({ port: 0, host: '127.0.0.1', now: () => t, burst: 8, globalPerSecond: 500, decodesPerSecond: 100 })
  try {
    const n = await decodes(async () => { for (let i = 0; i < 5000; i++) r.onMessage(garbage(), { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 9 }) })
    // before: every packet decoded (5,000), each source being new
    assert.is(n, 100, `decodes: ${n}`)
    assert.is(r.stats.dropped, 100); assert.is(r.stats.limited, 4900)
    // while the flood lasts an honest request is cut too; a second later the bucket has refilled
    r.onMessage(request(), { address: '127.0.2.1', port: 9 })
    assert.is(r.stats.answered, 0)
    t += 1000
    r.onMessage(request(), { address: '127.0.2.1', port: 9 })
    assert.is(r.stats.answered, 1)
  } finally { await r.stop() }
})

test.run()
