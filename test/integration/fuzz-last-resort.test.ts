// The daemon's last line of defence, in a real `dbc node start` process: an error escaping a
// protocol handler is logged with its protocol and peer and the node keeps answering its API;
// an error outside any handler stops the node with one line and a non-zero exit code. The
// errors are raised by a preloaded fixture (test/fuzz/fixtures/escape-trigger.ts) on signals.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { API_INFO_FILE } from '../../src/api/client.js'
import { LocalNetwork, repoRoot } from '../../demo/network.js'
import { LAST_RESORT_EXIT_CODE } from '../../src/node/last-resort.js'
import { waitUntil } from '../helpers/wait.js'

const waitFor = async (what: string, cond: () => boolean, ms = 30_000): Promise<void> => { await waitUntil(what, cond, { ms, everyMs: 50 }) }

test('an error escaping a protocol handler is logged with its context and the node keeps serving; one outside stops it', async () => {
  const net = new LocalNetwork()
  const saved = process.env.NODE_OPTIONS
  process.env.NODE_OPTIONS = `${saved ?? ''} --import tsx --import ${pathToFileURL(join(repoRoot, 'test/fuzz/fixtures/escape-trigger.ts')).href}`.trim()
  try {
    const node = await net.start({ name: 'n', location: '35.68,139.69', extra: ['--no-connection-monitor'] })
    process.env.NODE_OPTIONS = saved
    const pid = node.process.pid as number
    const log = (): string => net.logOf(node)
    process.kill(pid, 'SIGUSR2')
    await waitFor('the contained errors in the log', () => log().includes('handler bug: rejected') && log().includes('cannot read properties of undefined'))
    const lines = log().split('\n').filter(l => l.includes('handler bug:'))
    for (const l of lines) {
      const rec = JSON.parse(l) as Record<string, unknown>
      assert.is(rec.protocol, '/dbc/escape-test/1.0.0')
      assert.is(rec.peer, '12D3KooWEscapeTestPeer')
      assert.match(String(rec.msg), 'still serving')
    }
    // five identical errors within a second: written once, the rest counted
    const thrown = lines.filter(l => l.includes('cannot read properties')).length
    assert.ok(thrown < 5, `${thrown} identical lines written for 5 errors`)
    await waitFor('the repeat count', () => /"repeated":4/.test(log()), 10_000)
    // still up, and the API still answers
    assert.is(node.process.exitCode, null)
    const st = await node.api.call<{ peerId: string }>('GET', '/v1/status')
    assert.is(st.peerId, node.peerId)
    // an error outside any protocol handler: clean stop, one line, non-zero
    const exited = new Promise<number | null>(resolve => node.process.once('exit', code => { resolve(code) }))
    process.kill(pid, 'SIGHUP')
    const code = await exited
    assert.is(code, LAST_RESORT_EXIT_CODE)
    const out = log()
    const line = out.split('\n').find(l => l.startsWith('dbc node: stopping:'))
    assert.ok(line !== undefined, `no exit line in:\n${out.slice(-2000)}`)
    assert.match(line, 'this.table is not a function')
    assert.not.match(out.slice(out.indexOf('dbc node: stopping:')), /\n\s+at /, 'no stack trace without --verbose')
    // a clean stop removes the API info file (Daemon.stop); a plain crash leaves it behind
    assert.not.ok(existsSync(join(node.dataDir, API_INFO_FILE)), 'the node stopped cleanly before exiting')
  } finally {
    process.env.NODE_OPTIONS = saved
    await net.stop()
  }
})

test.run()
