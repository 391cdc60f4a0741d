// Where node-datachannel's native binary cannot load, a node still starts: @libp2p/webrtc is
// loaded only when WebRTC is on, and a failure turns WebRTC off with a warning (review s10 M2).
// Without the lazy load, importing src/net/host.ts itself threw.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))

test('a NATed host whose WebRTC cannot load starts without it and says why', () => {
  const out = execFileSync(process.execPath, ['--require', here('../../fixtures/block-node-datachannel.cjs'), '--import', 'tsx', here('../../fixtures/webrtc-unavailable-host.ts')], { encoding: 'utf8', timeout: 60_000 })
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { started: string, webrtc: boolean, warnings: string[] }
  assert.is(r.started, 'started')
  assert.is(r.webrtc, false)
  assert.is(r.warnings.length, 1)
  assert.match(r.warnings[0], /node-datachannel|Cannot find module/)
})

test.run()
