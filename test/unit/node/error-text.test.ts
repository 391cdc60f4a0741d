// `dbc ping` to a peer that closes the stream (helper user16's walk: a NATed peer under nat.strict
// closing a direct connection) printed "cannot reach P: undefined": libp2p rejected with a
// StreamCloseEvent, an Event with no message.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { StreamCloseEvent } from '@libp2p/interface'
import { errorText } from '../../../src/errors.js'

test('an Event thrown by libp2p reads as what happened, not "undefined"', () => {
  const closed = new StreamCloseEvent(false)
  assert.is((closed as unknown as Error).message, undefined) // what the ping route printed
  assert.is(errorText(closed), 'the stream was closed by the peer before it answered')
  assert.is(errorText(new StreamCloseEvent(true, new Error('stream reset'))), 'stream reset')
})

test('errors, empty messages and other values', () => {
  assert.is(errorText(new Error('boom')), 'boom')
  const e = new Error(''); e.name = 'AbortError'
  assert.is(errorText(e), 'AbortError')
  assert.is(errorText('text'), 'text')
  assert.is(errorText(undefined), 'undefined')
})

test.run()
