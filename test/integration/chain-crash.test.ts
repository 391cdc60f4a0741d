// Exactly once across a crash: a bridge process is killed with SIGKILL right after it
// broadcast a settlement (before confirming it); a restarted bridge on the same data dir ends
// with exactly one settlement on chain and a clean outbox. Against anvil and against the
// embedded EVM (whose chain state lives in the killed process's data dir). The kill before
// the broadcast, and repeated rounds, are in test/long/chain-crash-loop.test.ts.
import { test } from 'uvu'
import { startAnvil, type AnvilHandle } from '../../src/chain/index.js'
import { crashAndResume } from './chain-crash-run.js'

let anvil: AnvilHandle
test('setup anvil', async () => { anvil = await startAnvil() })

for (const kind of ['anvil', 'embedded'] as const) {
  test(`[${kind}] kill -9 after the broadcast, restart: exactly one settlement, clean outbox`, async () => {
    await crashAndResume(kind, 'afterBroadcast', anvil.url)
  })
}

test('teardown', async () => { await anvil.stop() })

test.run()
