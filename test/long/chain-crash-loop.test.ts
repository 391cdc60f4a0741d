// Long variant of the crash test: both fault points (after writing the tx down but before the
// broadcast, and after the broadcast), both chains, several rounds each.
import { test } from 'uvu'
import { startAnvil, type AnvilHandle } from '../../src/chain/index.js'
import { crashAndResume } from '../integration/chain-crash-run.js'

const ROUNDS = 3
let anvil: AnvilHandle
test('setup anvil', async () => { anvil = await startAnvil() })

for (const kind of ['anvil', 'embedded'] as const) {
  for (const fault of ['beforeBroadcast', 'afterBroadcast']) {
    for (let round = 1; round <= ROUNDS; round++) {
      test(`[${kind}] round ${round}: kill -9 at ${fault}, restart: each voucher paid once`, async () => {
        await crashAndResume(kind, fault, anvil.url)
      })
    }
  }
}

// A chain with real block times (1 s) and 2 confirmations, like DBC's 6 s blocks: the killed
// process leaves its tx in the mempool; the restarted one re-broadcasts it and waits for depth.
for (const fault of ['beforeBroadcast', 'afterBroadcast']) {
  test(`[anvil, 1 s blocks, 2 confirmations] kill -9 at ${fault}: each voucher paid once`, async () => {
    const slow = await startAnvil({ blockTime: 1 })
    try {
      await crashAndResume('anvil', fault, slow.url, { DBC_TEST_CONFIRMATIONS: '2' })
    } finally {
      await slow.stop()
    }
  })
}

test('teardown', async () => { await anvil.stop() })

test.run()
