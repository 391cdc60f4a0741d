// `dbc node start` in the foreground on a terminal printed the daemon's pino JSON; it now prints
// each record as `dbc node logs` does (time, level, message, key=value), control characters
// stripped (a record may carry a remote peer's text). The log files stay JSON; a pipe gets JSON.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openNodeLog } from '../../../src/node/logging.js'
import { lastLogLines, logDir } from '../../../src/node/log-files.js'

const dirs: string[] = []
test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

test('pretty: the foreground gets lines for people, control characters stripped; the file keeps JSON', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dbc-log-pretty-')); dirs.push(dataDir)
  const lines: string[] = []
  const log = await openNodeLog({ dataDir, level: 'info', pretty: true, out: { write: (s: string) => lines.push(s) } })
  log.logger.info({ peer: '12D3KooWabc', reason: 'bad\u001b[31m red\u0007' }, 'peer refused')
  log.logger.warn('STUN responder not started')
  await log.close()
  assert.is(lines.length, 2, lines.join(''))
  assert.match(lines[0], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO {2}peer refused {2}peer=12D3KooWabc reason=/)
  assert.ok(lines.every(l => l.endsWith('\n') && !l.slice(0, -1).includes('\n')), JSON.stringify(lines))
  // eslint-disable-next-line no-control-regex
  assert.not.match(lines[0].slice(0, -1), /[\u0000-\u001f\u007f]/)
  assert.not.match(lines[0], /^\{/)
  assert.match(lines[1], / WARN {2}STUN responder not started$/m)
  const file = lastLogLines(logDir(dataDir), 10)
  assert.is(file.length, 2)
  assert.is(JSON.parse(file[0]).msg, 'peer refused')
})

test('not pretty (a pipe): nothing goes through the pretty writer; stdout gets the JSON record', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dbc-log-pretty-')); dirs.push(dataDir)
  const lines: string[] = []
  const log = await openNodeLog({ dataDir, level: 'info', pretty: false, out: { write: (s: string) => lines.push(s) } })
  log.logger.info('a JSON line on the runner\'s stdout')
  await log.close()
  assert.is(lines.length, 0)
})

test.run()
