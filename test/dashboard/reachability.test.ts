// The dashboard's reachability verdict and its advice, from a node's own addresses and settings.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { judgeReachability, isPublicAddr, isPrivateAddr } from '../../src/dashboard/reachability.js'
import { SlotTracker } from '../../src/dashboard/slots.js'

test('a public address without --behind-nat is public, with no advice', () => {
  const r = judgeReachability({ addrs: ['/ip4/127.0.0.1/tcp/4001', '/ip4/203.0.113.7/tcp/4001'], behindNat: false, inboundFrom: ['/ip4/198.51.100.2/tcp/5555'] })
  assert.is(r.status, 'public')
  assert.equal(r.publicAddrs, ['/ip4/203.0.113.7/tcp/4001'])
  assert.is(r.inbound, 1)
  assert.equal(r.advice, [])
})

test('a relay reservation is relayed, with advice to forward the port', () => {
  const r = judgeReachability({ addrs: ['/ip4/192.168.1.5/tcp/4001', '/ip4/203.0.113.9/tcp/4001/p2p/12D3KooWRelay/p2p-circuit'], behindNat: true, inboundFrom: [] })
  assert.is(r.status, 'relayed')
  assert.is(r.relayAddrs.length, 1)
  assert.ok(r.advice.some(a => a.includes('--announce')))
})

test('private addresses only (or --behind-nat without a relay) is behind NAT; loopback only is local', () => {
  assert.is(judgeReachability({ addrs: ['/ip4/10.0.0.4/tcp/4001'], behindNat: false, inboundFrom: [] }).status, 'behind-nat')
  assert.is(judgeReachability({ addrs: ['/ip4/203.0.113.7/tcp/4001'], behindNat: true, inboundFrom: [] }).status, 'behind-nat')
  const local = judgeReachability({ addrs: ['/ip4/127.0.0.1/tcp/4001'], behindNat: false, inboundFrom: [] })
  assert.is(local.status, 'local-only')
  assert.ok(local.advice.some(a => a.includes('--listen')))
})

test('address classes', () => {
  for (const a of ['/ip4/10.1.2.3/tcp/1', '/ip4/172.16.0.1/tcp/1', '/ip4/192.168.0.1/tcp/1', '/ip4/100.64.0.1/tcp/1', '/ip6/fd00::1/tcp/1']) {
    assert.ok(isPrivateAddr(a), a)
    assert.not.ok(isPublicAddr(a), a)
  }
  for (const a of ['/ip4/8.8.8.8/tcp/1', '/ip6/2001:db8::1/tcp/1', '/dns4/node.example.org/tcp/1']) assert.ok(isPublicAddr(a), a)
  for (const a of ['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/1', '/ip4/0.0.0.0/tcp/1', '/ip4/172.32.0.1/tcp/1']) assert.is(isPublicAddr(a), a === '/ip4/172.32.0.1/tcp/1', a)
})

test('slot tracker counts running and waiting tasks from slot events', () => {
  const s = new SlotTracker()
  let changes = 0
  const off = s.onChange(() => { changes++ })
  s.on({ type: 'queued', taskId: 'a' })
  s.on({ type: 'started', taskId: 'a' })
  s.on({ type: 'queued', taskId: 'b' })
  assert.equal(s.view(), { running: 1, queued: 1, finished: 0, failed: 0, refused: 0 })
  s.on({ type: 'finished', taskId: 'a', ok: false } as any)
  s.on({ type: 'refused', taskId: 'b' })
  s.on({ type: 'progress', taskId: 'x' })
  assert.equal(s.view(), { running: 0, queued: 0, finished: 1, failed: 1, refused: 1 })
  assert.is(changes, 5)
  off()
  s.on({ type: 'queued', taskId: 'c' })
  assert.is(changes, 5)
})

test.run()
