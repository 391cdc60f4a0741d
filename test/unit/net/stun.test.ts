// The STUN binding responder of public nodes (src/net/stun): answers a binding request with the
// source's address (XOR-MAPPED-ADDRESS, as @msimerson/stun's client reads it), drops anything else
// without crashing, answers no more than its rate limit per source, and the response is small.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import stun from '@msimerson/stun'
import { StunResponder, bindingResponse } from '../../../src/net/stun/index.js'
import { StunRateLimit } from '../../../src/core/routing/stun-rate-limit.js'

function request (): Buffer {
  const m = Buffer.alloc(20)
  m.writeUInt16BE(0x0001, 0); m.writeUInt16BE(0, 2); m.writeUInt32BE(0x2112a442, 4); randomBytes(12).copy(m, 8)
  return m
}

/** The XOR-MAPPED-ADDRESS of a response, decoded by hand (independent of the library that built it). */
function mapped (res: Buffer): { address: string, port: number } {
  assert.is(res.readUInt16BE(0), 0x0101)
  assert.is(res.readUInt16BE(20), 0x0020)
  const port = res.readUInt16BE(26) ^ 0x2112
  const a = (res.readUInt32BE(28) ^ 0x2112a442) >>> 0
  return { address: [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.'), port }
}

test('a binding request gets the source address back, same transaction, 32 bytes', () => {
  const req = request()
  const res = bindingResponse(req, '203.0.113.7', 40123)
  assert.ok(res !== undefined)
  assert.is(res.length, 32)
  assert.equal(res.subarray(8, 20), req.subarray(8, 20))
  assert.equal(mapped(res), { address: '203.0.113.7', port: 40123 })
})

test('anything but a well-formed binding request is dropped (no throw)', () => {
  const bad: Buffer[] = [Buffer.alloc(0), Buffer.alloc(19), randomBytes(20), randomBytes(548), Buffer.alloc(4096)]
  const wrongLen = request(); wrongLen.writeUInt16BE(8, 2); bad.push(wrongLen) // declares attributes it lacks
  const resp = request(); resp.writeUInt16BE(0x0101, 0); bad.push(resp) // a response, not a request
  const big = Buffer.concat([request(), Buffer.alloc(600)]); big.writeUInt16BE(600, 2); bad.push(big)
  const junkAttr = Buffer.concat([request(), Buffer.from([0x00, 0x20, 0x00, 0x04, 1, 2, 3, 4])]); junkAttr.writeUInt16BE(8, 2); bad.push(junkAttr)
  for (const m of bad) assert.is(bindingResponse(m, '203.0.113.7', 1), undefined)
  for (let i = 0; i < 2000; i++) {
    const m = request(); const r = randomBytes(Math.floor(Math.random() * 64)); m.writeUInt16BE(r.length & ~3, 2)
    try { bindingResponse(Buffer.concat([m, r.subarray(0, r.length & ~3)]), '10.0.0.1', 9) } catch (err) { assert.unreachable(`threw ${String(err)}`) }
  }
})

test('rate limit: a burst per source, refilled over time, and a cap over all sources', () => {
  const l = new StunRateLimit({ burst: 3, refillMs: 1000, globalPerSecond: 4, maxSources: 2 }, 0)
  assert.equal([1, 2, 3, 4].map(() => l.allow('a', 0)), [true, true, true, false])
  assert.equal([l.allow('b', 0), l.allow('b', 0)], [true, false], 'the second is over the cap of all sources (4 a second)')
  assert.ok(l.allow('a', 1000), 'a token per source and per 1/4 s of the global one came back')
  l.allow('c', 1000)
  assert.is(l.tracked, 2)
})

test('the responder answers over UDP, and keeps answering after garbage', async () => {
  const r = await StunResponder.start({ port: 0, host: '127.0.0.1', burst: 4 })
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  const got: Buffer[] = []
  sock.on('message', m => got.push(m))
  for (const m of [randomBytes(20), Buffer.alloc(1), randomBytes(1200)]) sock.send(m, r.port, '127.0.0.1')
  for (let i = 0; i < 10; i++) sock.send(request(), r.port, '127.0.0.1')
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.is(got.length, 4, 'answers only its burst for one source')
  const res = stun.decode(got[0])
  assert.is(res.type, 0x0101)
  assert.equal(mapped(got[0]), { address: '127.0.0.1', port: sock.address().port })
  assert.is(r.stats.answered, 4); assert.is(r.stats.limited, 6); assert.ok(r.stats.dropped >= 2)
  sock.close(); await r.stop()
})

test('a packet from source port 0 or a link-local (zoned) address gets no answer and throws nothing (review s10 H1)', async () => {
  const r = await StunResponder.start({ port: 0, host: '127.0.0.1' })
  try {
    // both threw inside the socket's message handler before: the daemon's last resort then exits
    r.onMessage(request(), { address: '1.2.3.4', port: 0 })
    r.onMessage(request(), { address: 'fe80::1%eth0', port: 5 })
    r.onMessage(request(), { address: '::ffff:10.0.0.1', port: 70000 })
    assert.is(r.stats.answered, 0)
    assert.is(r.stats.dropped, 3)
    assert.is(bindingResponse(request(), 'fe80::1%eth0', 5), undefined)
    // and it still answers a good source
    r.onMessage(request(), { address: '127.0.0.1', port: 9 })
    assert.is(r.stats.answered, 1)
  } finally { await r.stop() }
})

test.run()
