// Property-based tests (fast-check) over every decoder, envelope check and message handler that
// sees bytes from remote peers: none of them may throw; every bad input must come back as an
// error value (or a verdict), and mutations of valid signed objects must be refused.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { dbc } from '../../src/wire/gen/wire.js'
import { decodeMessage } from '../../src/wire/decode.js'
import { FrameDecoder, encodeFrame } from '../../src/wire/frame.js'
import { WireError } from '../../src/errors.js'
import { sealEnvelope, openEnvelope, checkEnvelope, encodeEnvelope } from '../../src/crypto/envelope.js'
import { verifyAck } from '../../src/crypto/ack.js'
import { verifyCapability, buildCapabilityRecord, signCapabilityRecord, encodeSignedCapability } from '../../src/core/capability/index.js'
import { buildReceipt, signReceipt, signReceiptBatch, verifyReceipt } from '../../src/core/settlement/receipt.js'
import { validateManifest } from '../../src/core/scheduler/index.js'
import { CyclonView, Gossip, RandomWalks } from '../../src/core/membership/index.js'
import { ReceiveWindow, MultipathDelivery, decideRelay } from '../../src/core/routing/index.js'
import { verifyAnnouncement, signAnnouncement } from '../../src/net/overlay/announce.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, signBytes } from '../../src/core/identity/index.js'
import { createRng } from '../../src/core/rng.js'
import type { Stream } from '@libp2p/interface'
import { FramedStream } from '../../src/net/framed.js'
import { CoalescingWriter } from '../../src/net/lease-writer.js'
import { checkBundle, serveLeaseTasks } from '../../src/net/task-lease-stream.js'
import { toHex } from '../../src/core/identity/index.js'
import { FakeStream, fakeConnection } from '../unit/net/fake-stream.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const rng = createRng(99)
const secretA = rng.bytes(new Uint8Array(32))
const secretB = rng.bytes(new Uint8Array(32))
const peerA = peerIdBytesFromEd25519Key(ed25519PublicKey(secretA))
const peerB = peerIdBytesFromEd25519Key(ed25519PublicKey(secretB))
const NOW = 1_800_000_000_000

/** Every message type in the generated wire code (walks the dbc namespace). */
function messageTypes (): Array<{ name: string, type: { decode: (b: Uint8Array) => unknown, encode: (m: any) => { finish: () => Uint8Array }, fromObject?: (o: any) => unknown } }> {
  const out: Array<{ name: string, type: any }> = []
  const walk = (o: Record<string, any>, path: string): void => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'function' && typeof v.decode === 'function') out.push({ name: `${path}.${k}`, type: v })
      if (v !== null && (typeof v === 'object' || typeof v === 'function') && /^[a-z]/.test(k)) walk(v, `${path}.${k}`)
    }
  }
  walk(dbc as any, 'dbc')
  return out
}

/** Mutations of valid bytes: flips, truncations, extensions, splices. */
const mutate = (v: Uint8Array): fc.Arbitrary<Uint8Array> => { const valid = new Uint8Array(v) /* a copy: Buffer#slice is a view */; return fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = valid.slice(); if (b.length > 0) b[i % b.length] ^= x; return b }),
  fc.nat().map(n => valid.slice(0, valid.length === 0 ? 0 : n % valid.length)),
  fc.uint8Array({ maxLength: 64 }).map(tail => new Uint8Array([...valid, ...tail])),
  fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 16 })).map(([i, ins]) => { const at = valid.length === 0 ? 0 : i % valid.length; return new Uint8Array([...valid.subarray(0, at), ...ins, ...valid.subarray(at)]) })
) }

test('every generated message type: decodeMessage never throws on random or mutated bytes', () => {
  const types = messageTypes()
  assert.ok(types.length >= 30, `found ${types.length} message types`)
  for (const { name, type } of types) {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), bytes => {
      const r = decodeMessage(type as any, bytes)
      if (!r.ok) assert.instance(r.error, WireError, name)
    }), { numRuns: Math.ceil(RUNS / 3), seed: 1 })
    // a valid encoding of a default-ish message, then mutated
    const valid = type.encode(type.fromObject?.({}) ?? {}).finish()
    fc.assert(fc.property(mutate(valid), bytes => {
      const r = decodeMessage(type as any, bytes)
      if (!r.ok) assert.instance(r.error, WireError, name)
    }), { numRuns: Math.ceil(RUNS / 6), seed: 2 })
  }
})

test('lease stream: random and mutated TaskBundle frames end the stream with a typed WireError, or each of their tasks is answered', async () => {
  const leaseId = new Uint8Array([3, 3])
  const t = (n: number): dbc.task.v1.ITask => ({ leaseId, taskId: new Uint8Array([n]), jobId: new Uint8Array([1]), executor: 'wasm', entry: 'run', codeHash: new Uint8Array([9]), input: new Uint8Array([n]) })
  const valid = dbc.task.v1.TaskMessage.encode({ bundle: { tasks: [t(1), t(2), t(3)] } }).finish()
  const provider = {
    runTask: async (task: dbc.task.v1.ITask) => ({ taskId: task.taskId, ok: true, output: new Uint8Array([1]) }),
    runBundle: async (tasks: readonly dbc.task.v1.ITask[]) => tasks.map(task => ({ taskId: task.taskId, ok: true, output: new Uint8Array([1]) }))
  }
  const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
  let accepted = 0
  await fc.assert(fc.asyncProperty(fc.oneof(mutate(valid), fc.uint8Array({ maxLength: 256 })), async bytes => {
    const s = new FakeStream()
    const framed = new FramedStream(s as unknown as Stream, { maxFrameBytes: 1 << 20 })
    const writer = new CoalescingWriter(framed, { lingerMs: 0 })
    const served = serveLeaseTasks({ framed, writer, connection: fakeConnection('holder') as never, sender: new Uint8Array([1]), provider, leaseId, slots: 2, bundleMax: 4, charge: () => {}, writeTimeoutMs: 1000 }).then(() => undefined, (e: Error) => e)
    s.deliver(encodeFrame(bytes))
    for (let i = 0; i < 5; i++) await turn()
    s.end()
    const err = await served
    const decoded = decodeMessage(dbc.task.v1.TaskMessage, bytes)
    if (err !== undefined) { assert.instance(err, WireError); return }
    const answered = new FrameDecoder({ maxFrameBytes: 1 << 20 }).push(new Uint8Array(Buffer.concat(s.sent)), 1000).map(f => dbc.task.v1.TaskMessage.decode(f as Uint8Array).result)
    if (decoded.ok && decoded.value.bundle != null) {
      // accepted: checkBundle found nothing wrong, and every task got its own answer
      const tasks = checkBundle(decoded.value.bundle, 4, toHex(leaseId))
      assert.equal(answered.map(r => toHex(r?.taskId ?? new Uint8Array())).sort(), tasks.map(x => toHex(x.taskId ?? new Uint8Array())).sort())
      accepted++
    }
  }), { numRuns: Math.ceil(RUNS / 3), seed: 3 })
  assert.ok(accepted > 0, 'some mutated bundles are still well-formed and run')
})

test('decodeMessage bounds repeated fields and nesting', () => {
  const many = dbc.membership.v1.MembershipMessage.encode({ shuffleRequest: { peers: Array.from({ length: 300 }, () => ({ peerId: peerA })) } }).finish()
  const r = decodeMessage(dbc.membership.v1.MembershipMessage, many, { maxRepeated: 256 })
  assert.not.ok(r.ok)
  assert.is(!r.ok && r.error.code, 'MESSAGE_LIMIT')
})

test('FrameDecoder: random chunks never throw, never buffer past the limit, and split streams reassemble', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), chunks => {
    const d = new FrameDecoder({ maxFrameBytes: 1024 })
    for (const c of chunks) {
      for (const f of d.push(c)) {
        if (f instanceof WireError) assert.ok(['FRAME_TOO_LARGE', 'MALFORMED_FRAME'].includes(f.code), f.code)
        else assert.ok(f.length <= 1024)
      }
      assert.ok(d.buffered <= 1024 + 5, `buffered ${d.buffered}`)
    }
  }), { numRuns: RUNS, seed: 3 })
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 10 }), fc.array(fc.nat({ max: 50 }), { maxLength: 30 }), (frames, cuts) => {
    const all = new Uint8Array(frames.reduce<number[]>((acc, f) => [...acc, ...encodeFrame(f)], []))
    const d = new FrameDecoder({ maxFrameBytes: 1024 })
    const got: Uint8Array[] = []
    let at = 0
    for (const c of cuts) { const end = Math.min(all.length, at + c); for (const f of d.push(all.subarray(at, end))) got.push(f as Uint8Array); at = end }
    for (const f of d.push(all.subarray(at))) got.push(f as Uint8Array)
    assert.equal(got.map(f => [...f]), frames.map(f => [...f]))
  }), { numRuns: RUNS, seed: 4 })
})

function validEnvelope (mode: 'static' | 'ephemeral'): dbc.envelope.v1.Envelope {
  let n = 0
  return sealEnvelope({ senderSecretKey: secretA, sender: peerA, recipient: peerB, payload: new TextEncoder().encode('hello fuzz'), expiresAt: NOW + 30_000, sequence: 7, mode, random: out => out.fill(++n) })
}

test('openEnvelope/checkEnvelope: random and mutated envelopes are refused with a reason, never thrown', () => {
  for (const mode of ['static', 'ephemeral'] as const) {
    const env = validEnvelope(mode)
    const bytes = encodeEnvelope(env)
    const opts = { now: NOW, recipient: peerB, recipientSecretKey: secretB }
    const good = openEnvelope(bytes, opts)
    assert.ok(good.ok, 'the unmutated envelope opens')
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), mutate(bytes)), b => {
      const o = openEnvelope(b, opts)
      const c = checkEnvelope(b, { now: NOW })
      if (!o.ok) assert.type(o.reason, 'string')
      if (!c.ok) assert.type(c.reason, 'string')
      // a mutation may be a no-op on the meaning (e.g. an unknown field appended), but never
      // yields a different payload or sender
      if (o.ok) { assert.equal([...o.payload], [...new TextEncoder().encode('hello fuzz')]); assert.equal([...o.sender], [...peerA]) }
    }), { numRuns: RUNS, seed: 5 })
    // field-level mutations of the decoded envelope (bad lengths, swapped keys, NaN expiry)
    fc.assert(fc.property(fc.record({
      field: fc.constantFrom('sender', 'recipient', 'messageId', 'ephemeralKey', 'nonce', 'ciphertext', 'signature'),
      value: fc.uint8Array({ maxLength: 80 }),
      expiresAt: fc.oneof(fc.constant(env.expiresAt), fc.double())
    }), ({ field, value, expiresAt }) => {
      const e = dbc.envelope.v1.Envelope.create({ ...env, [field]: value, expiresAt })
      const o = openEnvelope(e, opts)
      const c = checkEnvelope(e, { now: NOW })
      const same = [...(env as any)[field]].join() === [...value].join() && expiresAt === env.expiresAt
      if (!same) { assert.not.ok(o.ok, `${field} changed yet the envelope opened`); assert.not.ok(c.ok && field !== 'recipient' && field !== 'ciphertext' && field !== 'nonce' && field !== 'ephemeralKey' && false) }
    }), { numRuns: RUNS, seed: 6 })
    // replay past expiry and to the wrong recipient
    const late = openEnvelope(bytes, { ...opts, now: NOW + 60_000 })
    assert.is(late.ok ? 'opened' : late.reason, 'expired', late.ok ? '' : late.detail)
    assert.is((openEnvelope(bytes, { ...opts, recipient: peerA, recipientSecretKey: secretA }) as any).reason, 'wrong-recipient')
  }
})

test('verifyAck never throws on garbage acks', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 80 }), fc.integer(), fc.integer(), fc.uint8Array({ maxLength: 80 }), (rec, id, path, status, sig) => {
    const ack = dbc.envelope.v1.Ack.create({ messageId: id, pathId: path >>> 0, status: status & 3, signature: sig })
    assert.type(verifyAck(rec, ack), 'boolean')
  }), { numRuns: RUNS, seed: 7 })
})

test('verifyCapability: random and mutated records are refused with a reason', () => {
  const record = buildCapabilityRecord({ peerId: peerA, addrs: [], lat: 35.68, lon: 139.69, gpus: [{ model: 'RTX 4090', count: 1, memoryMib: 24000 }], cpuCores: 8, memoryMib: 32000, priceGpuHour: 1, priceCpuHour: 0.1, executors: ['wasm'], perfScore: 1, issuedAt: NOW, ttlMs: 60_000, seq: 1 } as any)
  const bytes = encodeSignedCapability(signCapabilityRecord(record, secretA))
  assert.ok(verifyCapability(bytes, { now: NOW + 1 }).ok, 'the valid record verifies')
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), mutate(bytes)), b => {
    const r = verifyCapability(b, { now: NOW + 1 })
    if (!r.ok) assert.ok(['malformed', 'oversized', 'forged', 'expired', 'not-yet-valid'].includes(r.reason))
    else assert.equal([...r.record.peerId], [...peerA])
  }), { numRuns: RUNS, seed: 8 })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 80 }), (rec, sig) => {
    const r = verifyCapability(dbc.capability.v1.SignedCapability.create({ record: rec, signature: sig }), { now: NOW })
    assert.not.ok(r.ok)
  }), { numRuns: RUNS, seed: 9 })
})

test('verifyReceipt: random and mutated receipts are refused with a reason', () => {
  const receipt = buildReceipt({ jobId: new Uint8Array([1, 2]), taskId: new Uint8Array([3]), provider: peerA, consumer: peerB, usage: { wallMs: 1000, cpuMs: 900, gpuSeconds: 0, bytesIn: 8, bytesOut: 8 }, prices: { priceGpuHour: 1, priceCpuHour: 0.5 }, startedAt: NOW, finishedAt: NOW + 1000, outputHash: new Uint8Array(32), payoutAddress: '0x0000000000000000000000000000000000000001' })
  const signed = signReceipt(receipt, secretA)
  const bytes = dbc.receipt.v1.SignedReceipt.encode(signed).finish()
  // bytes as a submitter gets them: decoded (which may throw), then verified
  const check = (b: Uint8Array): ReturnType<typeof verifyReceipt> => {
    let s: dbc.receipt.v1.SignedReceipt
    try { s = dbc.receipt.v1.SignedReceipt.decode(b) } catch { return { ok: false, reason: 'does not decode' } }
    return verifyReceipt(s)
  }
  assert.ok(check(bytes).ok, 'the valid receipt verifies')
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), mutate(bytes)), b => {
    const r = check(b)
    if (!r.ok) assert.type(r.reason, 'string')
    else assert.is(r.receipt.amount, receipt.amount)
  }), { numRuns: RUNS, seed: 10 })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 80 }), (rec, sig) => {
    const s = dbc.receipt.v1.SignedReceipt.create({ receipt: rec, signature: sig })
    const r = verifyReceipt(s)
    assert.not.ok(r.ok)
  }), { numRuns: RUNS, seed: 11 })
  // a correctly signed receipt whose usage fields are garbage (NaN, negative, huge)
  fc.assert(fc.property(fc.double(), fc.double(), fc.double(), fc.double(), (cpuMs, gpuSeconds, pg, pc) => {
    const r = dbc.receipt.v1.UsageReceipt.create({ ...receipt, cpuMs, gpuSeconds, priceGpuHour: pg, priceCpuHour: pc })
    const s = signReceipt(r, secretA)
    const v = verifyReceipt(s)
    if (!v.ok) assert.type(v.reason, 'string')
  }), { numRuns: RUNS, seed: 12 })
})

test('verifyReceipt: mutated batch-signed receipts and hostile batches are refused with a reason', () => {
  const receipts = [3, 4, 5].map(t => dbc.receipt.v1.UsageReceipt.encode(buildReceipt({ jobId: new Uint8Array([1, 2]), taskId: new Uint8Array([t]), provider: peerA, consumer: peerB, usage: { wallMs: 1000, cpuMs: 900, gpuSeconds: 0, bytesIn: 8, bytesOut: 8 }, prices: { priceGpuHour: 1, priceCpuHour: 0.5 }, startedAt: NOW, finishedAt: NOW + 1000, outputHash: new Uint8Array(32), payoutAddress: '0x0000000000000000000000000000000000000001' })).finish())
  const signed = signReceiptBatch(receipts, m => signBytes(secretA, m))
  const bytes = dbc.receipt.v1.SignedReceipt.encode(signed[1]).finish()
  const check = (b: Uint8Array): ReturnType<typeof verifyReceipt> => {
    let s: dbc.receipt.v1.SignedReceipt
    try { s = dbc.receipt.v1.SignedReceipt.decode(b) } catch { return { ok: false, reason: 'does not decode' } }
    return verifyReceipt(s)
  }
  assert.ok(check(bytes).ok, 'the batch-signed receipt verifies alone')
  fc.assert(fc.property(mutate(bytes), b => {
    const r = check(b)
    if (!r.ok) assert.type(r.reason, 'string')
    else assert.is(r.receipt.amount, dbc.receipt.v1.UsageReceipt.decode(receipts[1]).amount)
  }), { numRuns: RUNS, seed: 15 })
  // any batch list (sizes, lengths, entries) with the real signature: refused unless it is the signed one
  fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { maxLength: 40 }), batch => {
    const r = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: receipts[1], signature: signed[1].signature, batch }))
    assert.not.ok(r.ok)
    assert.type(r.ok ? '' : r.reason, 'string')
  }), { numRuns: RUNS, seed: 16 })
})

test('verifyAnnouncement: random and mutated announcements are refused', () => {
  const ann = signAnnouncement(secretA, { origin: peerA, id: new Uint8Array(16).fill(1), ttl: 3, createdAt: NOW, kind: 1, body: new Uint8Array([1, 2, 3]) })
  assert.ok(verifyAnnouncement(ann))
  const bytes = dbc.membership.v1.Announcement.encode(ann).finish()
  fc.assert(fc.property(mutate(bytes), b => {
    const d = decodeMessage(dbc.membership.v1.Announcement, b)
    if (d.ok) assert.type(verifyAnnouncement(d.value), 'boolean')
  }), { numRuns: RUNS, seed: 13 })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 80 }), fc.double(), fc.uint8Array({ maxLength: 80 }), (origin, id, createdAt, sig) => {
    assert.type(verifyAnnouncement(dbc.membership.v1.Announcement.create({ origin, id, createdAt, signature: sig })), 'boolean')
  }), { numRuns: RUNS, seed: 14 })
})

const manifestArb = fc.oneof(
  fc.anything(),
  fc.record({
    name: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
    executor: fc.oneof(fc.constantFrom('wasm', 'process', 'docker', 'nope'), fc.anything()),
    code: fc.oneof(fc.record({ wasm: fc.string() }), fc.anything()),
    entry: fc.oneof(fc.string(), fc.anything()),
    inputs: fc.oneof(fc.record({ files: fc.record({ path: fc.string(), chunkBytes: fc.oneof(fc.integer(), fc.double()) }) }), fc.record({ range: fc.record({ from: fc.double(), to: fc.double() }) }), fc.anything()),
    verification: fc.oneof(fc.record({ redundancy: fc.oneof(fc.integer(), fc.double()) }), fc.anything()),
    task: fc.oneof(fc.record({ timeoutMs: fc.double(), expectedMs: fc.double(), maxAttempts: fc.integer() }), fc.anything())
  }, { requiredKeys: [] })
)

test('validateManifest: arbitrary JSON-ish input yields ok or a list of issues, never a throw', () => {
  fc.assert(fc.property(manifestArb, raw => {
    const r = validateManifest(raw)
    if (!r.ok) { assert.ok(r.issues.length > 0); for (const i of r.issues) assert.type(i.message, 'string') }
  }), { numRuns: RUNS * 2, seed: 15 })
})

test('membership machines: handle* with garbage entries, ttls and ids never throw', () => {
  const peerArb = fc.oneof(fc.string({ maxLength: 8 }), fc.constant('self'))
  fc.assert(fc.property(fc.array(fc.record({
    kind: fc.constantFrom('shuffle-req', 'shuffle-resp', 'gossip', 'walk', 'walk-result', 'tick'),
    from: peerArb,
    entries: fc.array(fc.record({ peer: peerArb, age: fc.oneof(fc.integer(), fc.double()) }), { maxLength: 40 }),
    ttl: fc.oneof(fc.integer(), fc.double()),
    createdAt: fc.double(),
    id: fc.string({ maxLength: 6 }),
    dt: fc.nat({ max: 20_000 })
  }), { maxLength: 60 }), steps => {
    const r = createRng(5)
    const view = new CyclonView<string, undefined>({ self: 'self', rng: r, start: 0 })
    view.addPeers(['a', 'b', 'c'])
    const sample = (n: number, ex: readonly string[]): string[] => view.sample(n, ex)
    const gossip = new Gossip<string, number>({ self: 'self', rng: r, samplePeers: sample })
    const walks = new RandomWalks<string, number, number>({ self: 'self', rng: r, samplePeers: sample })
    let now = 0
    for (const s of steps) {
      now += s.dt
      const entries = s.entries.map(e => ({ peer: e.peer, age: e.age, data: undefined }))
      if (s.kind === 'shuffle-req') view.handleShuffleRequest(now, s.from, entries)
      else if (s.kind === 'shuffle-resp') view.handleShuffleResponse(now, s.from, entries)
      else if (s.kind === 'gossip') assert.ok(['deliver', 'duplicate', 'expired', 'invalid'].includes(gossip.handle(now, s.from, { id: s.id, origin: s.from, ttl: s.ttl, createdAt: s.createdAt, body: 1 })))
      else if (s.kind === 'walk') walks.handleWalk(now, s.from, { id: s.id, origin: s.from, ttl: s.ttl, query: 1 }, [1, 2])
      else if (s.kind === 'walk-result') walks.handleResult(now, s.from, s.id, [3])
      else { view.tick(now); walks.tick(now) }
      view.pollOutbound(); view.pollEvents(); gossip.pollOutbound(); walks.pollOutbound(); walks.pollEvents()
      assert.ok(view.peers().length <= 16, `view grew to ${view.peers().length}`)
      assert.not.ok(view.peers().includes('self'), 'a peer put us in our own view')
    }
  }), { numRuns: RUNS, seed: 16 })
})

test('routing machines: acks, replays and relay decisions with garbage never throw', () => {
  fc.assert(fc.property(fc.array(fc.record({
    id: fc.constantFrom('m1', 'm2', 'x'),
    pathId: fc.oneof(fc.integer(), fc.double()),
    status: fc.constantFrom('ok', 'duplicate', 'rejected', 'unreachable', 'weird'),
    expiresAt: fc.double(),
    hops: fc.oneof(fc.integer(), fc.double()),
    dt: fc.nat({ max: 5000 })
  }), { maxLength: 60 }), steps => {
    const d = new MultipathDelivery<string>({})
    const w = new ReceiveWindow<string>()
    let now = 0
    d.send(now, { id: 'm1', recipient: 'r', expiresAt: 30_000 }, [{ via: undefined, predictedMs: 1 } as any, { via: 'v', predictedMs: 2 } as any], [])
    for (const s of steps) {
      now += s.dt
      d.handleAck(now, s.id, s.pathId, s.status as any)
      d.tick(now)
      d.pollOutbound(); d.pollEvents()
      assert.ok(['new', 'duplicate', 'replayed'].includes(w.check(now, s.id, s.expiresAt, 'v')))
      assert.ok(['deliver', 'forward', 'hop-limit', 'unreachable'].includes(decideRelay({ recipientIsSelf: false, hopsLeft: s.hops, recipientReachable: true })))
    }
  }), { numRuns: RUNS, seed: 17 })
})

test.run()
