// Overlay leases (src/net/overlay/task-envelopes.ts) over a fake envelope link: leases are capped
// per holder and in all (typed OVERLAY_LEASES_FULL), beats go at most once a second and stop when
// the lease expires, a beat for a lease the holder no longer holds is answered with close, only
// heartbeats beat a lease, and refusals an honest peer may cause are not charged.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeChunk, encodeChunk, splitMessage } from '../../../src/core/routing/chunker.js'
import { TASK_APP_CONTENT, type EnvelopeLink } from '../../../src/net/overlay/chunk-messenger.js'
import { TaskEnvelopes, overlayBeatMs, MIN_OVERLAY_BEAT_MS, type TaskProvider } from '../../../src/net/overlay/task-envelopes.js'
import { WireError } from '../../../src/errors.js'
import { toHex } from '../../../src/core/identity/index.js'
import type { ReceivedMessage } from '../../../src/net/overlay/envelopes.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

/** Endpoints joined by a fake envelope link; `lose` eats a send (every path failed). */
function links (names: string[], lose: (from: string, payload: Uint8Array) => boolean = () => false): Map<string, EnvelopeLink> {
  const subs = new Map(names.map(n => [n, new Set<(m: ReceivedMessage) => void>()]))
  let n = 0
  return new Map(names.map(self => [self, {
    subscribe: fn => { subs.get(self)!.add(fn); return () => { subs.get(self)!.delete(fn) } },
    send: async (to, payload, opts) => {
      await new Promise(resolve => setImmediate(resolve))
      if (lose(self, payload)) throw Object.assign(new Error('every path failed'), { code: 'DELIVERY_FAILED' })
      for (const fn of subs.get(to)!) fn({ sender: self, messageId: String(n++), contentType: opts.contentType ?? TASK_APP_CONTENT, sequence: 0, payload, via: 'R1' })
      return { via: 'R1' }
    }
  } satisfies EnvelopeLink]))
}

/** A provider that opens every lease and records closes; runTask throws what `taskError` says. */
function fakeProvider (taskError?: () => Error): { provider: TaskProvider, opened: string[], closed: string[] } {
  const opened: string[] = []; const closed: string[] = []
  return {
    opened,
    closed,
    provider: {
      id: 'B',
      offer: () => ({ slots: 1 }),
      openLease: (lease) => { opened.push(toHex(lease.leaseId ?? new Uint8Array())) },
      closeLease: (leaseId) => { closed.push(toHex(leaseId)) },
      runTask: async (task) => { if (taskError !== undefined) throw taskError(); return { taskId: task.taskId, ok: true } }
    }
  }
}

const leaseOf = (n: number, o: Partial<dbc.task.v1.ILease> = {}): dbc.task.v1.ILease => ({ leaseId: new Uint8Array(16).fill(n), heartbeatMs: 5000, expiresAt: Date.now() + 3_600_000, ...o })
const until = async (what: string, ok: () => boolean, ms = 30_000): Promise<void> => {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

test('overlay leases are capped per holder and in all: beyond, OVERLAY_LEASES_FULL (typed, not charged)', async () => {
  const l = links(['A', 'C', 'B'])
  const charged: string[] = []
  const { provider } = fakeProvider()
  const server = new TaskEnvelopes(l.get('B')!, { provider: () => provider, maxLeasesPerHolder: 2, maxLeases: 3, onBadInput: (_p, e) => charged.push(e.code) })
  const a = new TaskEnvelopes(l.get('A')!); const c = new TaskEnvelopes(l.get('C')!)
  const onHeartbeat = (): void => {}
  await a.openLease('B', leaseOf(1), { onHeartbeat })
  await a.openLease('B', leaseOf(2), { onHeartbeat })
  await a.openLease('B', leaseOf(3), { onHeartbeat }).then(() => assert.unreachable('opened'), (err: Error & { code?: string }) => { assert.is(err.code, 'OVERLAY_LEASES_FULL', 'per holder') })
  const c1 = await c.openLease('B', leaseOf(4), { onHeartbeat })
  await c.openLease('B', leaseOf(5), { onHeartbeat }).then(() => assert.unreachable('opened'), (err: Error & { code?: string }) => { assert.is(err.code, 'OVERLAY_LEASES_FULL', 'in all') })
  assert.is(server.status().servedLeases, 3)
  await c1.close()
  await until('the close to arrive', () => server.status().servedLeases === 2)
  await c.openLease('B', leaseOf(5), { onHeartbeat })
  assert.equal(charged, [])
  a.close(); c.close(); server.close()
})

test('overlay beats go at most once a second and at most every 5 s', () => {
  assert.is(MIN_OVERLAY_BEAT_MS, 500)
  assert.is(overlayBeatMs({ heartbeatMs: 100 }), 500, 'a holder cannot ask for 10 beats a second')
  assert.is(overlayBeatMs({ heartbeatMs: 200 }, 100), 500)
  assert.is(overlayBeatMs({}, 300), 500)
  assert.is(overlayBeatMs({ heartbeatMs: 2500 }), 2500)
  assert.is(overlayBeatMs({ heartbeatMs: 60_000 }), 5000)
})

test('the provider stops beating and ends the lease at its expiresAt', async () => {
  const l = links(['A', 'B'])
  let now = Date.now()
  const { provider, closed } = fakeProvider()
  const server = new TaskEnvelopes(l.get('B')!, { provider: () => provider, now: () => now })
  const a = new TaskEnvelopes(l.get('A')!)
  let beats = 0
  await a.openLease('B', leaseOf(1, { heartbeatMs: 1000, expiresAt: now + 60_000 }), { onHeartbeat: () => { beats++ } })
  await until('a beat', () => beats > 0)
  now += 61_000
  await until('the lease to end', () => closed.length === 1)
  assert.equal(closed, [toHex(new Uint8Array(16).fill(1))])
  assert.is(server.status().servedLeases, 0)
  a.close(); server.close()
})

test('a beat for a lease the submitter no longer holds (it restarted) is answered with close: the provider ends it', async () => {
  const l = links(['A', 'B'])
  const { provider, closed } = fakeProvider()
  const server = new TaskEnvelopes(l.get('B')!, { provider: () => provider })
  const before = new TaskEnvelopes(l.get('A')!)
  await before.openLease('B', leaseOf(7, { heartbeatMs: 1000 }), { onHeartbeat: () => {} })
  before.close() // the submitter restarts: its close never went out
  const after = new TaskEnvelopes(l.get('A')!)
  await until('the provider to end the lease', () => closed.length === 1)
  assert.equal(closed, [toHex(new Uint8Array(16).fill(7))])
  assert.is(server.status().servedLeases, 0)
  after.close(); server.close()
})

test('only heartbeats beat a lease: another answer from the provider does not', async () => {
  // the provider's pushed beats are lost: the lease's beat count can move only through answers
  const l = links(['A', 'B'], (from, payload) => { const d = decodeChunk(payload); return from === 'B' && d.ok && d.chunk.kind === 'heartbeat' })
  const { provider } = fakeProvider()
  const server = new TaskEnvelopes(l.get('B')!, { provider: () => provider })
  const a = new TaskEnvelopes(l.get('A')!)
  let beats = 0
  await a.openLease('B', leaseOf(1), { onHeartbeat: () => { beats++ } })
  const r = await a.request('B', { leaseRequest: {} })
  assert.is(r.reply.offer?.slots, 1)
  assert.is(beats, 0)
  a.close(); server.close()
})

test('a task under a lease the provider lost is refused typed, not charged; garbage still is; a chunk split of another size is not charged', async () => {
  const l = links(['A', 'B'])
  const charged: string[] = []
  const { provider } = fakeProvider(() => new WireError('TASK_NO_LEASE', 'refused: no such lease here'))
  const server = new TaskEnvelopes(l.get('B')!, { provider: () => provider, onBadInput: (_p, e) => charged.push(e.code) })
  const a = new TaskEnvelopes(l.get('A')!)
  await a.request('B', { task: { taskId: new Uint8Array(16), leaseId: new Uint8Array(16).fill(9) } }).then(() => assert.unreachable('answered'), (err: Error & { code?: string }) => { assert.is(err.code, 'TASK_NO_LEASE') })
  assert.equal(charged, [])
  await a.request('B', {}).then(() => assert.unreachable('answered'), (err: Error & { code?: string }) => { assert.is(err.code, 'UNEXPECTED_MESSAGE') })
  assert.equal(charged, ['UNEXPECTED_MESSAGE'])
  // a sender whose chunk size is 100 bytes: refused (CHUNK_SPLIT), not charged; a bad magic is
  const link = l.get('A')!
  await link.send('B', encodeChunk(splitMessage('request', new Uint8Array(16).fill(3), new Uint8Array(300), 100)[0]), { contentType: TASK_APP_CONTENT })
  assert.is(server.messenger.stats.refused, 1)
  await link.send('B', new Uint8Array(40), { contentType: TASK_APP_CONTENT })
  assert.equal(charged, ['UNEXPECTED_MESSAGE', 'CHUNK_MALFORMED'])
  a.close(); server.close()
})

test.run()
