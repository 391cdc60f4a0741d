// Exactly once across a crash: a provider process is killed with SIGKILL right after it
// broadcast a redeem (before confirming it); a restarted one on the same data dir ends with each
// voucher paid exactly once, by that very tx, and a clean outbox. Against anvil and against the
// embedded EVM (whose chain state lives in the killed process's data dir). The kill before the
// broadcast, and repeated rounds, are in test/long/chain-crash-loop.test.ts; kills at random
// points of the whole payment flow in test/payment/redeem-crash.test.ts.
import { test } from 'uvu'
import { startAnvil, type AnvilHandle } from '../../src/chain/index.js'
import { crashAndResume } from './chain-crash-run.js'

let anvil: AnvilHandle
test('setup anvil', async () => { anvil = await startAnvil() })

for (const kind of ['anvil', 'embedded'] as const) {
  test(`[${kind}] kill -9 after the broadcast, restart: each voucher paid once, clean outbox`, async () => {
    await crashAndResume(kind, 'afterBroadcast', anvil.url)
  })
}

test('teardown', async () => { await anvil.stop() })

test.run()
