// Fuzz of the STUN responder public relay nodes run (src/net/stun): hostile UDP datagrams at a real
// StunResponder over real sockets (random bytes, truncated and oversized requests, wrong magic
// cookie, other methods and classes, declared lengths that lie, binding requests with odd,
// overlong, truncated or unknown attributes), and odd sources handed to its message handler as
// the socket would (port 0, out-of-range ports, zoned link-local, v4-mapped, garbage strings).
// Checked: nothing throws; every answer is a binding success response of at most 44 bytes for a
// request we sent, carrying our transaction id and the sender's own address; every well-formed
// binding request is answered (with limits out of the way) and nothing malformed ever is; and,
// with the daemon's limits, one source gets no more than its burst plus refill.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import dgram from 'node:dgram'
import { StunResponder, MAX_REQUEST_BYTES } from '../../src/net/stun/index.js'
import { STUN_RATE_DEFAULTS } from '../../src/core/routing/stun-rate-limit.js'
import { createRng, type Rng } from '../../src/core/rng.js'

const COOKIE = 0x2112a442
type Kind = 'valid' | 'invalid' | 'odd'
interface Packet { bytes: Buffer, kind: Kind, txid: string, what: string }

const bytes = (rng: Rng, n: number): Buffer => Buffer.from(rng.bytes(new Uint8Array(n)))
function attr (type: number, value: Buffer, pad = true): Buffer {
  const h = Buffer.alloc(4); h.writeUInt16BE(type, 0); h.writeUInt16BE(value.length, 2)
  return Buffer.concat([h, value, pad ? Buffer.alloc((4 - (value.length & 3)) & 3) : Buffer.alloc(0)])
}
function message (rng: Rng, type: number, body: Buffer, o: { cookie?: number, length?: number } = {}): Buffer {
  const h = Buffer.alloc(20)
  h.writeUInt16BE(type, 0); h.writeUInt16BE(o.length ?? body.length, 2); h.writeUInt32BE(o.cookie ?? COOKIE, 4); bytes(rng, 12).copy(h, 8)
  return Buffer.concat([h, body])
}
/** Attributes an ICE agent sends (USERNAME, PRIORITY, ICE-CONTROLLING, MESSAGE-INTEGRITY, FINGERPRINT), with random values. */
const iceAttrs = (rng: Rng): Buffer => Buffer.concat([attr(0x0006, Buffer.from(`${bytes(rng, 4).toString('hex')}:${bytes(rng, 4).toString('hex')}`)), attr(0x0024, bytes(rng, 4)), attr(0x802a, bytes(rng, 8)), attr(0x0008, bytes(rng, 20)), attr(0x8028, bytes(rng, 4))])

/** One hostile or honest datagram, labelled with what the responder must do with it. */
function packet (rng: Rng): Packet {
  const pick = rng.int(16)
  const make = (kind: Kind, what: string, b: Buffer): Packet => ({ bytes: b, kind, what, txid: b.length >= 20 ? b.subarray(8, 20).toString('hex') : '' })
  switch (pick) {
    case 0: return make('valid', 'bare binding request', message(rng, 0x0001, Buffer.alloc(0)))
    case 1: return make('valid', 'ICE binding request', message(rng, 0x0001, iceAttrs(rng)))
    case 2: return make('invalid', 'random bytes', bytes(rng, rng.int(1500)))
    case 3: { const m = message(rng, 0x0001, iceAttrs(rng)); return make('invalid', 'truncated request', m.subarray(0, rng.int(m.length))) }
    case 4: { const body = bytes(rng, (MAX_REQUEST_BYTES - 20 + 4 + rng.int(4000)) & ~3); return make('invalid', 'oversized request', message(rng, 0x0001, body)) }
    case 5: return make('invalid', 'wrong magic cookie', message(rng, 0x0001, iceAttrs(rng), { cookie: (COOKIE ^ (1 + rng.int(0xffff))) >>> 0 }))
    case 6: return make('invalid', 'other method or class', message(rng, [0x0101, 0x0111, 0x0011, 0x0003, 0x0004, 0x0009, 0x3fff][rng.int(7)], iceAttrs(rng)))
    case 7: { const body = iceAttrs(rng); return make('invalid', 'declared length lies', message(rng, 0x0001, body, { length: (body.length + 4 + 4 * rng.int(100)) & 0xffff })) }
    case 8: return make('invalid', 'length not a multiple of 4', message(rng, 0x0001, bytes(rng, 1 + 4 * rng.int(20) + 1 + rng.int(2))))
    case 9: return make('invalid', 'type with top bits set', message(rng, 0x0001 | ((1 + rng.int(3)) << 14), Buffer.alloc(0)))
    // attributes whose own length runs past the message: the decoder must refuse, not read beyond
    case 10: { const a = attr(0x0006, bytes(rng, 8)); a.writeUInt16BE(8 + 4 * (1 + rng.int(100)), 2); return make('odd', 'attribute longer than the message', message(rng, 0x0001, a)) }
    case 11: return make('odd', 'unknown comprehension-required attributes', message(rng, 0x0001, Buffer.concat(Array.from({ length: 1 + rng.int(8) }, () => attr(rng.int(0x8000), bytes(rng, rng.int(40)))))))
    case 12: return make('odd', 'XOR-MAPPED-ADDRESS in a request, bad family', message(rng, 0x0001, attr(0x0020, Buffer.from([0, 9, ...bytes(rng, 6)]))))
    case 13: return make('odd', 'unpadded attribute', message(rng, 0x0001, Buffer.concat([attr(0x0006, bytes(rng, 5), false), Buffer.alloc(3)])))
    case 14: return make('odd', 'random attribute bytes', message(rng, 0x0001, bytes(rng, 4 * rng.int(120))))
    default: return make('odd', 'many tiny attributes', message(rng, 0x0001, Buffer.concat(Array.from({ length: 1 + rng.int(120) }, () => attr(0x8000 + rng.int(0x7fff), Buffer.alloc(0))))))
  }
}

async function socketOn (host: string): Promise<dgram.Socket | undefined> {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
  return await new Promise(resolve => {
    s.once('error', () => { s.close(); resolve(undefined) })
    s.bind(0, host, () => { resolve(s) })
  })
}

/** The XOR-MAPPED-ADDRESS of a binding response, decoded by hand: `address:port` (IPv4 or IPv6). */
function mappedOf (res: Buffer): string {
  assert.is(res.readUInt16BE(20), 0x0020, 'the one attribute is XOR-MAPPED-ADDRESS')
  const family = res.readUInt8(25); const port = res.readUInt16BE(26) ^ 0x2112
  const key = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), res.subarray(8, 20)])
  if (family === 1) return `${[0, 1, 2, 3].map(i => res[28 + i] ^ key[i]).join('.')}:${port}`
  const a = Array.from({ length: 16 }, (_, i) => res[28 + i] ^ key[i])
  return `${Array.from({ length: 8 }, (_, i) => ((a[2 * i] << 8) | a[2 * i + 1]).toString(16)).join(':')}:${port}`
}

test('hostile datagrams over UDP: only well-formed binding requests are answered, each correctly; nothing throws', async () => {
  const rng = createRng(2026)
  // limits out of the way here: this test is about what is answered (the next one is about how many)
  const r = await StunResponder.start({ port: 0, host: '::', burst: 1e9, globalPerSecond: 1e9 })
  const sources = [await socketOn('127.0.0.1'), await socketOn('::1')].filter((s): s is dgram.Socket => s !== undefined)
  try {
    const sent = new Map<string, Packet>()
    const answers: Array<{ res: Buffer, to: dgram.Socket }> = []
    for (const s of sources) s.on('message', res => answers.push({ res, to: s }))
    // what reached the responder (loopback drops datagrams when its receive buffer is full)
    const received = new Set<string>()
    let arrived = 0
    const onMessage = r.onMessage.bind(r)
    r.onMessage = (msg, rinfo) => { arrived++; received.add(msg.toString('hex')); onMessage(msg, rinfo) }
    const counts: Record<Kind, number> = { valid: 0, invalid: 0, odd: 0 }
    const validSent: Buffer[] = []
    for (let i = 0; i < 4000; i++) {
      const p = packet(rng)
      counts[p.kind]++
      if (p.kind === 'valid') validSent.push(p.bytes)
      if (p.txid !== '') sent.set(p.txid, p)
      const s = sources[i % sources.length]
      s.send(p.bytes, r.port, s.address().address)
      if (i % 20 === 19) await new Promise(resolve => setTimeout(resolve, 5)) // stay under the receive buffers
    }
    await new Promise(resolve => setTimeout(resolve, 500))
    const answeredKinds: Record<string, number> = {}
    for (const { res, to } of answers) {
      assert.ok(res.length <= 44, `answer of ${res.length} bytes`)
      assert.is(res.readUInt16BE(0), 0x0101, 'a binding success response')
      assert.is(res.readUInt32BE(4), COOKIE)
      const p = sent.get(res.subarray(8, 20).toString('hex'))
      assert.ok(p !== undefined, 'the answer carries the transaction id of a request we sent')
      assert.ok(p.kind !== 'invalid', `answered a malformed datagram: ${p.what}`)
      answeredKinds[`${p.kind} ${p.what}`] = (answeredKinds[`${p.kind} ${p.what}`] ?? 0) + 1
      const from = to.address()
      assert.is(mappedOf(res), `${from.family === 'IPv6' ? '0:0:0:0:0:0:0:1' : '127.0.0.1'}:${from.port}`, 'the sender\'s own address')
    }
    const validReceived = validSent.filter(b => received.has(b.toString('hex'))).length
    console.log(`  ${sources.length} source sockets, sent ${JSON.stringify(counts)}, ${arrived} reached the responder (${validReceived} well-formed); answered ${answers.length} ${JSON.stringify(answeredKinds)}; stats ${JSON.stringify(r.stats)}`)
    assert.is(answers.length, r.stats.answered, 'every answer sent arrived (no loss on loopback)')
    const validAnswered = Object.entries(answeredKinds).filter(([k]) => k.startsWith('valid')).reduce((n, [, v]) => n + v, 0)
    assert.is(validAnswered, validReceived, 'every well-formed binding request that arrived was answered')
    assert.ok(validReceived > counts.valid / 2, `most requests arrived (${validReceived} of ${counts.valid})`)
    assert.is(r.stats.answered + r.stats.dropped + r.stats.limited, arrived, 'every datagram counted once')
  } finally {
    for (const s of sources) s.close()
    await r.stop()
  }
})

test('odd sources handed to the handler (port 0, bad ports, zoned, v4-mapped, garbage): no throw, no answer where none can go', async () => {
  const rng = createRng(7)
  const r = await StunResponder.start({ port: 0, host: '127.0.0.1', burst: 1e9, globalPerSecond: 1e9 })
  try {
    const good = message(rng, 0x0001, iceAttrs(rng))
    const odd: Array<{ address: string, port: number, answer: boolean }> = [
      { address: '192.0.2.1', port: 0, answer: false }, { address: '192.0.2.1', port: -1, answer: false }, { address: '192.0.2.1', port: 65536, answer: false },
      { address: '192.0.2.1', port: NaN, answer: false }, { address: 'fe80::1%eth0', port: 5, answer: false }, { address: 'fe80::1%25', port: 5, answer: false },
      { address: '', port: 5, answer: false }, { address: 'not-an-address', port: 5, answer: false }, { address: '::ffff:192.0.2.7', port: 5, answer: true },
      { address: '2001:db8::1', port: 65535, answer: true }, { address: '192.0.2.9', port: 1, answer: true }
    ]
    for (const o of odd) {
      const before = r.stats.answered
      for (let i = 0; i < 50; i++) r.onMessage(i === 0 ? good : packet(rng).bytes, { address: o.address, port: o.port })
      assert.is(r.stats.answered - before > 0, o.answer, `${o.address} port ${o.port}: ${o.answer ? 'answered' : 'no answer'}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100)) // send errors to unroutable addresses arrive on the socket
  } finally { await r.stop() }
})

test('with the daemon\'s limits, a flood from one source gets its burst and refill, and garbage takes no token', async () => {
  const rng = createRng(3)
  const r = await StunResponder.start({ port: 0, host: '127.0.0.1' })
  const s = await socketOn('127.0.0.1')
  assert.ok(s !== undefined)
  try {
    let got = 0
    s.on('message', () => { got++ })
    const t0 = Date.now()
    // 2000 malformed requests first, each with the binding request's type: none may take a token
    for (let i = 0; i < 2000; i++) {
      const b = message(rng, 0x0001, bytes(rng, 4 * rng.int(10)), { cookie: 0 })
      s.send(b, r.port, '127.0.0.1')
      if (i % 50 === 49) await new Promise(resolve => setTimeout(resolve, 2))
    }
    for (let i = 0; i < 500; i++) {
      s.send(message(rng, 0x0001, iceAttrs(rng)), r.port, '127.0.0.1')
      if (i % 50 === 49) await new Promise(resolve => setTimeout(resolve, 2))
    }
    await new Promise(resolve => setTimeout(resolve, 300))
    const seconds = (Date.now() - t0) / 1000
    const allowed = STUN_RATE_DEFAULTS.burst + Math.ceil(seconds * 1000 / STUN_RATE_DEFAULTS.refillMs)
    console.log(`  one source: 2000 malformed + 500 binding requests in ${seconds.toFixed(2)} s -> ${got} answers (allowed ${allowed}); stats ${JSON.stringify(r.stats)}`)
    assert.ok(got >= STUN_RATE_DEFAULTS.burst, `the burst was answered after the garbage (${got})`)
    assert.ok(got <= allowed, `no more than the burst plus refill (${got} > ${allowed})`)
  } finally {
    s.close()
    await r.stop()
  }
})

test.run()
