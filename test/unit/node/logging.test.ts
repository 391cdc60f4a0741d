// The node's own log: written to <dataDir>/logs, rolled by size, old files removed, node.log
// linking the newest; read back (last lines across files) and followed across a roll.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, readlinkSync, readFileSync, mkdirSync, writeFileSync, statSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, basename } from 'node:path'
import { openNodeLog } from '../../../src/node/logging.js'
import { listLogFiles, lastLogLines, followLog, prettyLogLine, logDir } from '../../../src/node/log-files.js'
import { waitUntil } from '../../helpers/wait.js'

const dirs: string[] = []
const tempDataDir = (): string => { const d = mkdtempSync(join(tmpdir(), 'dbc-log-')); dirs.push(d); return d }

/**
 * After a write that took the newest file past `bytes`: waits until the log rolled (node.log links
 * another file). A roll waits for an fsync, so a loaded disk may let a few more lines in first.
 */
async function rolledPast (dir: string, bytes: number): Promise<void> {
  const newest = readlinkSync(join(dir, 'node.log'))
  if (statSync(join(dir, newest)).size < bytes) return
  await until('the log to roll', () => readlinkSync(join(dir, 'node.log')) !== newest)
}

/** Waits (generously) until `cond` holds; fails with `what` if it never does. */
const until = async (what: string, cond: () => boolean): Promise<void> => { await waitUntil(what, cond, { ms: 30_000, everyMs: 20 }) }

test('writes past the size roll over to numbered files, keep `files` of them, and node.log links the newest', async () => {
  const dataDir = tempDataDir()
  // 4 KiB files, 3 kept
  const log = await openNodeLog({ dataDir, level: 'info', maxSizeMiB: 4 / 1024, files: 3, stdout: false })
  const pad = 'x'.repeat(200)
  const dir = logDir(dataDir)
  for (let i = 0; i < 200; i++) {
    log.logger.info({ i, pad }, 'line')
    await rolledPast(dir, 4096)
  }
  log.logger.info('the last line')
  await until('the old files to be removed', () => listLogFiles(dir).length === 3)
  const files = listLogFiles(dir)
  assert.ok(files[2].number >= 10, `rolled ${files[2].number} times`)
  // each full file stopped at the size (the line that crossed it is the last)
  for (const f of files.slice(0, 2)) assert.ok(statSync(f.file).size >= 4096 && statSync(f.file).size < 4096 + 300, `${f.file} is ${statSync(f.file).size} bytes`)
  assert.is(readlinkSync(join(dir, 'node.log')), basename(files[2].file))
  // reading: the last lines come from the newest file, and from the one before when it holds too few
  const last = lastLogLines(dir, 1)
  assert.is(JSON.parse(last[0]).msg, 'the last line')
  const many = lastLogLines(dir, 25).map(l => JSON.parse(l) as { i?: number, msg: string })
  assert.is(many.length, 25)
  assert.is(many[24].msg, 'the last line')
  assert.equal(many.slice(0, 24).map(r => r.i), Array.from({ length: 24 }, (_, k) => 176 + k)) // in order across files
  assert.match(readFileSync(join(dir, 'node.log'), 'utf8'), /the last line/)
  await log.close()
})

test('a follower started before a roll reads every line in order, across the roll', async () => {
  const dataDir = tempDataDir()
  const log = await openNodeLog({ dataDir, level: 'info', maxSizeMiB: 2 / 1024, files: 10, stdout: false })
  log.logger.info('before following')
  const seen: number[] = []
  const ac = new AbortController()
  const following = followLog(logDir(dataDir), line => { const r = JSON.parse(line) as { n?: number }; if (r.n !== undefined) seen.push(r.n) }, { signal: ac.signal, pollMs: 10 })
  for (let n = 0; n < 60; n++) {
    log.logger.info({ n, pad: 'y'.repeat(150) }, 'numbered')
    await rolledPast(logDir(dataDir), 2048)
  }
  await until('the follower to read every line', () => seen.length >= 60)
  ac.abort()
  await following
  assert.ok(listLogFiles(logDir(dataDir)).length >= 3, 'the log rolled while followed')
  assert.equal(seen, Array.from({ length: 60 }, (_, k) => k))
  await log.close()
})

test('a follower started before the node has a log reads the log from its first line', async () => {
  const dataDir = tempDataDir()
  const seen: string[] = []
  const ac = new AbortController()
  const following = followLog(logDir(dataDir), line => { seen.push(JSON.parse(line).msg as string) }, { signal: ac.signal, pollMs: 10 })
  await new Promise(resolve => setTimeout(resolve, 50))
  const log = await openNodeLog({ dataDir, level: 'info', stdout: false })
  log.logger.info('the very first line')
  log.logger.info('the second')
  await until('both lines', () => seen.length >= 2)
  ac.abort()
  await following
  assert.equal(seen, ['the very first line', 'the second'])
  await log.close()
})

test('a restarted node appends to its newest file; a plain node.log from before rolling becomes the oldest', async () => {
  const dataDir = tempDataDir()
  const dir = logDir(dataDir)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'node.log'), '{"level":30,"time":0,"msg":"from an old version"}\n')
  const a = await openNodeLog({ dataDir, level: 'info', stdout: false })
  a.logger.info('first run')
  await a.close()
  const b = await openNodeLog({ dataDir, level: 'info', stdout: false })
  b.logger.info('second run')
  await b.close()
  assert.equal(listLogFiles(dir).map(f => f.number), [0, 1])
  assert.ok(existsSync(join(dir, 'node.0.log')))
  assert.equal(lastLogLines(dir, 3).map(l => JSON.parse(l).msg), ['from an old version', 'first run', 'second run'])
})

test('the level is the config\'s: debug lines are not written at info', async () => {
  const dataDir = tempDataDir()
  const log = await openNodeLog({ dataDir, level: 'info', stdout: false })
  log.logger.debug('hidden')
  log.logger.warn({ peer: 'P' }, 'shown')
  await log.close()
  assert.equal(lastLogLines(logDir(dataDir), 10).map(l => JSON.parse(l).msg), ['shown'])
})

test('a record printed for people: time, level, message, fields; other lines as they are', () => {
  const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 11, 5, 23, 0, 0, 5), pid: 1, hostname: 'h', component: 'dbc', peer: '12D3', code: 'FRAME_TOO_LARGE', score: -3, err: { type: 'Error', message: 'too big' }, msg: 'bad input from peer' })
  assert.is(prettyLogLine(line), '2026-12-05 23:00:00.005 WARN  bad input from peer  peer=12D3 code=FRAME_TOO_LARGE score=-3 err="Error: too big"')
  assert.is(prettyLogLine('not json at all'), 'not json at all')
  assert.is(prettyLogLine('[1,2]'), '[1,2]')
})

test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

test.run()
