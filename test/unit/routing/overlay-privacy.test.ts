// Review fixes (H3, M2, M3) of the overlay route: sealed envelopes take the direct path only over
// a connection already open to a peer that is not private (a provider answering through relays
// does not dial the requester); an overlay that loses a task message is a lost copy, not a
// failed one; forcing the overlay makes private only capability matches and leased providers,
// pins providers with live overlay leases, and sends their escrow's vouchers over the overlay.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { RouteBook, RouteLostError, asRouteLost } from '../../../src/net/routes/index.js'
import { OverlayOnlyPeers } from '../../../src/net/routes/private-peers.js'
import { Libp2pJobTransport } from '../../../src/net/tasks.js'
import { TaskEnvelopes } from '../../../src/net/overlay/task-envelopes.js'
import { envelopeDirect } from '../../../src/node/overlay-subsystem.js'
import { DbcError } from '../../../src/errors.js'
import { FakeProvider, JobRunner, LocalTransport } from '../../../src/jobs/index.js'
import { validateManifest } from '../../../src/core/scheduler/index.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { fakeOverlay } from './fake-overlay.js'

const newPeer = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const fakeHost = (conns: (peer: string) => any[] = () => []): any => ({ addEventListener: () => {}, removeEventListener: () => {}, getConnections: (p?: any) => conns(String(p)), dial: async () => { throw new Error('must not dial') } })
const noStream = async (): Promise<never> => { throw new Error('no stream') }


test('H3: the direct path only over an open connection to a peer that is not private', async () => {
  const A = await newPeer(); const B = await newPeer(); const C = await newPeer()
  const priv = new OverlayOnlyPeers()
  priv.add(B)
  const open = new Set([A, B])
  const ctx: any = { host: fakeHost(p => open.has(p) ? [{ status: 'open' }] : []), privatePeers: priv }
  const direct = envelopeDirect(ctx)
  assert.ok(direct(A), 'connected, not private: direct')
  assert.not.ok(direct(B), 'private: never direct (the path would dial it)')
  assert.not.ok(direct(C), 'not connected: relays only (no dial to the requester)')
  assert.not.ok(envelopeDirect({ host: ctx.host } as any)(C), 'no private set: still no dial')
})

test('H3: a provider answers a request that came through relays through relays (direct: false on the reply)', async () => {
  const S = await newPeer()
  const sends: Array<{ direct?: boolean }> = []
  let onMessage: ((m: any) => void) | undefined
  const link: any = {
    send: async (_peer: string, _payload: Uint8Array, opts: { direct?: boolean }) => { sends.push({ direct: opts.direct }); return {} },
    subscribe: (fn: (m: any) => void) => { onMessage = fn; return () => {} }
  }
  const provider: any = { offer: async () => ({ slots: 1 }), openLease: async () => {}, runTask: async () => ({ ok: true }) }
  const te = new TaskEnvelopes(link, { provider: () => provider, direct: envelopeDirect({ host: fakeHost(), privatePeers: new OverlayOnlyPeers() } as any) })
  try {
    // a lease request from S, as one chunk through a relay (S holds no connection with us)
    const { splitMessage, encodeChunk } = await import('../../../src/core/routing/chunker.js')
    const [chunk] = splitMessage('request', new Uint8Array(16).fill(7), dbc.task.v1.TaskMessage.encode({ leaseRequest: {} }).finish(), 1 << 20)
    assert.ok(onMessage !== undefined, 'the messenger listens on the link')
    onMessage?.({ sender: S, messageId: 'm', contentType: (await import('../../../src/net/overlay/chunk-messenger.js')).TASK_APP_CONTENT, sequence: 1, payload: encodeChunk(chunk), via: 'R' })
    for (let i = 0; i < 200 && sends.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    assert.is(sends.length, 1, 'the offer went back')
    assert.is(sends[0].direct, false, 'through relays, not a dial to the requester')
  } finally { te.close() }
})

test('M2: the overlay losing a task is RouteLostError (thrown: a lost copy); a provider\'s own refusal stays a failed copy', async () => {
  const P = await newPeer()
  const leaseId = new Uint8Array(16).fill(1)
  for (const [err, lost] of [
    [new DbcError('OVERLAY_TIMEOUT', 'no reply'), true],
    [new DbcError('NO_PATH', 'no path'), true],
    [new DbcError('DELIVERY_FAILED', 'not delivered'), true],
    [Object.assign(new DbcError('OVERLAY_BUSY', 'busy'), { remote: true }), true],
    [Object.assign(new DbcError('TASK_TOO_LARGE', 'too large'), { remote: true }), false],
    [Object.assign(new DbcError('OVERLAY_TIMEOUT', 'a provider naming a route code'), { remote: true }), false]
  ] as Array<[DbcError, boolean]>) {
    const { overlay } = fakeOverlay({ answer: msg => msg.task != null ? err : { heartbeat: {} } })
    const routes = new RouteBook(fakeHost(), { overlay: () => overlay, forceOverlay: () => true, fallback: false })
    const tr = new Libp2pJobTransport({ host: fakeHost(), routes })
    await tr.openLease(P, { leaseId, jobId: new Uint8Array(32) }, {})
    const out = await tr.runTask(P, { leaseId, jobId: new Uint8Array(32), taskId: new Uint8Array(16) }, {}).then(r => r, (e: Error) => e)
    if (lost) {
      assert.instance(out, RouteLostError, `${err.code}: thrown as lost`)
      assert.is((out as RouteLostError).code, err.code, 'the route layer\'s code stays')
    } else {
      assert.not.instance(out, Error, `${err.code} from the provider: a failed result`)
      assert.is((out as dbc.task.v1.ITaskResult).ok, false)
    }
    tr.close()
  }
  assert.instance(asRouteLost(new DbcError('NO_PATH', 'x')), RouteLostError)
  assert.not.instance(asRouteLost(new Error('reset')), RouteLostError, 'a plain error is already a lost copy')
})

test('M2: the runner counts a RouteLostError as a lost copy (sent again), not a failed one', async () => {
  const sk = (n: number): Uint8Array => new Uint8Array(32).fill(n)
  const owner = { secretKey: sk(1), peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(sk(1))) }
  const compute = (input: Uint8Array): Uint8Array => createHash('sha256').update(input).digest()
  const p = new FakeProvider({ secretKey: sk(12), compute, slots: 1 })
  const tr = new LocalTransport([p], { sender: owner.peerId, heartbeatMs: 100 })
  let thrown = 0
  const run = tr.runTask.bind(tr)
  tr.runTask = async (provider, task, opts) => {
    if (thrown === 0) { thrown++; throw new RouteLostError(new DbcError('OVERLAY_TIMEOUT', 'no reply over the overlay')) }
    return await run(provider, task, opts)
  }
  const m = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 3 } }, task: { timeoutMs: 30_000, expectedMs: 1, maxAttempts: 3 }, verification: { mode: 'off' } })
  if (!m.ok) throw new Error(JSON.stringify(m.issues))
  try {
    const s = await new JobRunner({ jobId: '10c7'.padStart(64, '0'), manifest: m.manifest, holder: owner, transport: tr, code: new Uint8Array([0, 97, 115, 109]), leaseTimeoutMs: 5_000 }).run()
    assert.is(thrown, 1)
    assert.is(s.failed, 0, 'the copy the overlay lost is not a failure of the provider')
    assert.is(s.done, 4)
  } finally { tr.close() }
})

test('M3: forced overlay keeps DHT neighbours and relays connected; capability matches and leased providers turn private', async () => {
  const N = await newPeer(); const M = await newPeer()
  const priv = new OverlayOnlyPeers()
  const hungUp: string[] = []
  priv.hangUp = p => { hungUp.push(p) }
  priv.noteMatch(M)
  const { overlay, sent } = fakeOverlay()
  const book = new RouteBook(fakeHost(), { overlay: () => overlay, privatePeers: priv, forceOverlay: (_p, msg) => msg.voucher == null })
  await book.request(peerIdFromString(N), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, noStream)
  await book.request(peerIdFromString(M), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, noStream)
  assert.is(sent.length, 2, 'both asked over the overlay')
  assert.not.ok(priv.has(N), 'a connected peer the index did not name keeps its connection')
  assert.ok(priv.has(M), 'a capability match turns private')
  assert.equal(hungUp, [M])
  // leasing N makes it private; its escrow's vouchers take the overlay even once it left the set
  const escrow = new Uint8Array(32).fill(9)
  assert.ok(book.overlayFor(N, { lease: { payment: { chainJobId: escrow } } }) !== undefined)
  assert.ok(priv.has(N))
  const other = new RouteBook(fakeHost(), { overlay: () => overlay, forceOverlay: (_p, msg) => msg.lease != null })
  other.overlayFor(N, { lease: { payment: { chainJobId: escrow } } })
  assert.ok(other.overlayFor(N, { voucher: { escrowId: escrow } }) !== undefined, 'a voucher of an overlay lease\'s escrow goes over the overlay')
  assert.is(other.overlayFor(N, { voucher: { escrowId: new Uint8Array(32).fill(3) } }), undefined, 'another escrow\'s voucher does not')
})

test('M3: a provider with a live overlay lease is never evicted from the private set', async () => {
  const priv = new OverlayOnlyPeers()
  priv.add('pinned')
  assert.ok(priv.pin('pinned'))
  assert.not.ok(priv.pin('not-private'), 'only private peers are pinned')
  for (let i = 0; i < 4096; i++) priv.add(`p${i}`)
  assert.ok(priv.has('pinned'), 'the pinned provider stays past the bound')
  assert.not.ok(priv.has('p0'), 'the oldest unpinned one left')
  priv.unpin('pinned')
  priv.add('q')
  assert.not.ok(priv.has('pinned'), 'unpinned, it leaves in its turn')
})

test.run()
