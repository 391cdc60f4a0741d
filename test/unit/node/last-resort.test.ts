// The daemon's last line of defence: the keep-serving-or-stop decision (pure), the escape
// window, the repeat limiter, and the installed handler with injected exit/stop/log.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decideOnEscape, isStreamIoError, EscapeWindow, RepeatLimiter, installLastResort, MAX_ESCAPES_PER_MINUTE, MAX_CONTAINED_LINES, LAST_RESORT_EXIT_CODE } from '../../../src/node/last-resort.js'
import { withProtocolContext } from '../../../src/node/protocol-context.js'

const ctx = { protocol: '/dbc/task/1.0.0', peer: '12D3KooWpeer' }
const errno = (code: string): Error => Object.assign(new Error(code), { code })
const named = (name: string): Error => { const e = new Error(name); e.name = name; return e }

test('an error from a protocol handler is contained; the reason names protocol and peer', () => {
  const d = decideOnEscape({ context: ctx, ioError: false, recentEscapes: 1 })
  assert.is(d.action, 'continue')
  assert.match(d.reason, '/dbc/task/1.0.0')
  assert.match(d.reason, '12D3KooWpeer')
})

test('a broken connection or stream outside any handler is contained', () => {
  assert.is(decideOnEscape({ context: undefined, ioError: true, recentEscapes: 1 }).action, 'continue')
})

test('an unknown error outside any handler stops the node', () => {
  const d = decideOnEscape({ context: undefined, ioError: false, recentEscapes: 1 })
  assert.is(d.action, 'exit')
  assert.match(d.reason, 'outside any protocol handler')
})

test('too many escapes outside any handler in a minute stop the node; inside handlers never (no remote kill switch)', () => {
  assert.is(decideOnEscape({ context: undefined, ioError: true, recentEscapes: MAX_ESCAPES_PER_MINUTE }).action, 'continue')
  const d = decideOnEscape({ context: undefined, ioError: true, recentEscapes: MAX_ESCAPES_PER_MINUTE + 1 })
  assert.is(d.action, 'exit')
  assert.match(d.reason, `more than ${MAX_ESCAPES_PER_MINUTE}`)
  assert.is(decideOnEscape({ context: ctx, ioError: false, recentEscapes: 1_000_000 }).action, 'continue')
  assert.is(decideOnEscape({ context: ctx, ioError: true, recentEscapes: 4, maxEscapesPerMinute: 3 }).action, 'continue')
})

test('stream and socket errors are told apart from other errors', () => {
  for (const c of ['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'ERR_STREAM_SOMETHING_NEW']) assert.ok(isStreamIoError(errno(c)), c)
  for (const n of ['StreamResetError', 'StreamStateError', 'ConnectionClosedError']) assert.ok(isStreamIoError(named(n)), n)
  for (const e of [new Error('boom'), new TypeError('x is undefined'), errno('ENOENT'), errno('EACCES'), 'a string', undefined, null, 42]) assert.not.ok(isStreamIoError(e), String(e))
})

test('the escape window counts the last minute only', () => {
  const w = new EscapeWindow(60_000)
  assert.is(w.record(0), 1)
  assert.is(w.record(30_000), 2)
  assert.is(w.record(59_999), 3)
  assert.is(w.record(60_000), 3) // the one at 0 left the window
  assert.is(w.record(200_000), 1)
})

test('an identical line is let through once a second, with the count held back', () => {
  const r = new RepeatLimiter(1000)
  assert.equal(r.admit('a', 0), { log: true, repeated: 0 })
  assert.equal(r.admit('a', 10), { log: false, repeated: 0 })
  assert.equal(r.admit('a', 999), { log: false, repeated: 0 })
  assert.equal(r.admit('b', 999), { log: true, repeated: 0 })
  assert.equal(r.admit('a', 1000), { log: true, repeated: 2 })
  r.admit('a', 1001)
  assert.equal(r.drain(), [['a', 1, undefined]])
  assert.equal(r.drain(), [])
  const small = new RepeatLimiter(1000, 2)
  small.admit('x', 0); small.admit('y', 0); small.admit('z', 0)
  assert.equal(small.admit('x', 1), { log: true, repeated: 0 }) // 'x' was evicted: the map stays bounded
})

function harness (max?: number, charges?: Array<[string, string]>): { lr: ReturnType<typeof installLastResort>, lines: Array<{ obj: Record<string, unknown>, msg: string }>, written: string[], exits: number[], stops: number[], clock: { t: number } } {
  const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const written: string[] = []
  const exits: number[] = []
  const stops: number[] = []
  const clock = { t: 1000 }
  const log = { error: (obj: Record<string, unknown>, msg: string) => { lines.push({ obj, msg }) }, warn: (obj: Record<string, unknown>, msg: string) => { lines.push({ obj, msg }) } }
  const lr = installLastResort({ log, stop: async () => { stops.push(clock.t) }, exit: code => { exits.push(code) }, write: l => { written.push(l) }, now: () => clock.t, maxEscapesPerMinute: max, charge: charges === undefined ? undefined : (peer, err) => { charges.push([peer, err.code]) } })
  return { lr, lines, written, exits, stops, clock }
}

test('installed: a handler error is logged with protocol and peer, repeats are counted, and the node keeps serving', async () => {
  const h = harness()
  try {
    const err = new Error('cannot read properties of undefined')
    for (let i = 0; i < 5; i++) withProtocolContext(ctx, () => h.lr.handle('uncaughtException', err))
    assert.is(h.lines.length, 1, 'five identical lines within a second are written once')
    assert.is(h.lines[0].obj.protocol, ctx.protocol)
    assert.is(h.lines[0].obj.peer, ctx.peer)
    assert.is(h.lines[0].obj.err, 'cannot read properties of undefined')
    assert.match(h.lines[0].msg, 'still serving')
    h.clock.t += 1000
    withProtocolContext(ctx, () => h.lr.handle('uncaughtException', err))
    assert.is(h.lines[1].obj.repeated, 4)
    assert.is(h.lr.contained, 6)
    assert.is(h.lr.exitCode, 0)
    assert.equal(h.exits, [])
    assert.equal(h.stops, [])
    // a broken pipe outside any handler is contained too
    h.lr.handle('unhandledRejection', errno('EPIPE'))
    assert.is(h.lr.exitCode, 0)
  } finally { h.lr.uninstall() }
})

test('installed: an unknown error outside any handler stops the node cleanly and exits non-zero with one line', async () => {
  const h = harness()
  try {
    const d = h.lr.handle('uncaughtException', new TypeError('x is not a function'))
    assert.is(d.action, 'exit')
    assert.is(h.lr.exitCode, LAST_RESORT_EXIT_CODE)
    await new Promise(resolve => setTimeout(resolve, 10))
    assert.is(h.stops.length, 1, 'the daemon was asked to stop')
    assert.equal(h.exits, [LAST_RESORT_EXIT_CODE])
    assert.is(h.written.length, 1)
    assert.is(h.written[0].trim().split('\n').length, 1, 'one line, no stack without --verbose')
    assert.match(h.written[0], 'x is not a function')
    // a second fatal error while stopping does not stop twice
    h.lr.handle('uncaughtException', new Error('another'))
    await new Promise(resolve => setTimeout(resolve, 10))
    assert.is(h.stops.length, 1)
  } finally { h.lr.uninstall() }
})

test('installed: a flood of escapes inside handlers never stops the node; each non-stream one charges its peer', async () => {
  const charges: Array<[string, string]> = []
  const h = harness(3, charges)
  try {
    for (let i = 0; i < 200; i++) assert.is(withProtocolContext(ctx, () => h.lr.handle('unhandledRejection', new Error(`e${i}`))).action, 'continue')
    for (let i = 0; i < 10; i++) withProtocolContext(ctx, () => h.lr.handle('unhandledRejection', errno('ECONNRESET')))
    await new Promise(resolve => setTimeout(resolve, 10))
    assert.equal(h.exits, [])
    assert.is(h.lr.exitCode, 0)
    assert.is(h.lr.contained, 210)
    assert.is(charges.length, 200, 'a broken stream inside a handler is not the peer\'s fault')
    assert.equal(charges[0], [ctx.peer, 'HANDLER_FAILED'])
    assert.ok(h.lines.filter(l => l.msg.includes('still serving')).length <= MAX_CONTAINED_LINES, 'distinct messages are rate-limited too')
  } finally { h.lr.uninstall() }
})

test('installed: a flood of escapes outside any handler stops the node', async () => {
  const h = harness(3)
  try {
    for (let i = 0; i < 3; i++) assert.is(h.lr.handle('unhandledRejection', errno('EPIPE')).action, 'continue')
    assert.is(h.lr.handle('unhandledRejection', errno('EPIPE')).action, 'exit')
    await new Promise(resolve => setTimeout(resolve, 10))
    assert.equal(h.exits, [LAST_RESORT_EXIT_CODE])
    assert.match(h.written[0], 'more than 3 errors escaped outside any protocol handler in a minute')
  } finally { h.lr.uninstall() }
})

test('installed: the process handlers receive real escapes, with their context', async () => {
  const h = harness()
  try {
    withProtocolContext({ protocol: '/dbc/x/1.0.0', peer: 'P' }, () => { setTimeout(() => { throw new Error('thrown from a timer') }, 1) })
    withProtocolContext({ protocol: '/dbc/y/1.0.0', peer: 'Q' }, () => { void Promise.reject(new Error('rejected')) })
    for (let i = 0; i < 100 && h.lines.length < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
    const byErr = new Map(h.lines.map(l => [l.obj.err, l.obj]))
    assert.is(byErr.get('thrown from a timer')?.protocol, '/dbc/x/1.0.0')
    assert.is(byErr.get('rejected')?.peer, 'Q')
    assert.equal(h.exits, [])
  } finally { h.lr.uninstall() }
})

test.run()
