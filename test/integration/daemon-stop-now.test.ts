// A graceful stop waits for the subsystems' drains with the control API up; a second stop asked
// `now` (a second Ctrl-C, `dbc node stop --now`) ends the drain at once, and the drain's deadline
// ends it too. No subsystem stops before its drain ended (the compute peer's copies finish first).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { Daemon, type Subsystem } from '../../src/node/daemon.js'
import { loadConfig } from '../../src/node/config.js'
import { ApiClient } from '../../src/api/client.js'

/** A subsystem whose drain lasts until its signal aborts; records what happened, in order. */
function slowDrain (events: string[]): Subsystem {
  return {
    name: 'slow',
    start: async () => {},
    stop: async () => { events.push('stop') },
    inFlight: () => 2,
    drain: async (signal) => {
      events.push('drain')
      await new Promise<void>(resolve => { signal.addEventListener('abort', () => { events.push(`aborted: ${String((signal.reason as Error)?.message)}`); resolve() }, { once: true }) })
    }
  }
}

function daemonWith (events: string[]): { daemon: Daemon, dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'dbc-stop-now-'))
  const config = loadConfig({ flags: { dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], location: '35.68,139.69', connectionMonitor: false, nat: { stunPort: 0 } } as any, env: {} })
  return { daemon: new Daemon({ config, subsystems: [slowDrain(events)], logger: pino({ level: 'silent' }) }), dataDir }
}

test('POST /v1/stop drains (the API still answers), and a stop `now` ends the drain at once', async () => {
  const events: string[] = []
  const { daemon, dataDir } = daemonWith(events)
  try {
    await daemon.start()
    const api = ApiClient.connect(dataDir)
    assert.equal(await api.call('POST', '/v1/stop', {}), { stopping: true, draining: 2, drainS: 30 })
    for (let i = 0; i < 100 && !events.includes('drain'); i++) await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(events, ['drain'])
    // draining: the control API is up (a second `dbc node stop --now` must reach it)
    assert.is((await api.call<{ ok?: boolean, peerId?: string }>('GET', '/v1/status')).peerId, daemon.context.identity.peerId.toString())
    assert.equal(await api.call('POST', '/v1/stop', { now: true }), { stopping: true, draining: 0, drainS: 0 })
    await daemon.stopped
    assert.equal(events, ['drain', 'aborted: stopped at once', 'stop'])
  } finally {
    await daemon.stop({ now: true })
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('the drain ends at its deadline (drainS), then the subsystems stop', async () => {
  const events: string[] = []
  const { daemon, dataDir } = daemonWith(events)
  try {
    await daemon.start()
    await daemon.stop({ drainS: 0.2 })
    assert.equal(events, ['drain', 'aborted: drain deadline', 'stop'])
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test.run()
