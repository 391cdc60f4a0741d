// Text that comes from peers (refusal reasons, provider errors, routes' facts) reaches the terminal
// through the CLI's table and JSON printers: no escape sequence or bidi mark gets through raw.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { table, printJson } from '../../../src/cli/output.js'

const hostile = 'BUSY: \u001b]0;pwned\u0007\u001b[2Jcleared\u009b31m red\u202eevil'

test('table cells lose escape sequences, C1 controls and bidi overrides', () => {
  const out = table(['', ''], [['waiting', hostile]])
  assert.not.match(out, /[\u001b\u0007\u009b\u202e]/)
  assert.match(out, /waiting\s+BUSY: cleared redevil/)
})

test('printJson escapes C1 controls and bidi marks, and stays valid JSON with the same value', () => {
  let written = ''
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((s: string) => { written += s; return true }) as typeof process.stdout.write
  try { printJson({ reason: hostile }) } finally { process.stdout.write = write }
  assert.not.match(written, /[\u001b\u0007\u009b\u202e]/)
  assert.is(JSON.parse(written).reason, hostile)
})

test.run()
