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
      test(`[${kind}] round ${round}: kill -9 at ${fault}, restart: exactly one settlement`, async () => {
        await crashAndResume(kind, fault, anvil.url)
      })
    }
  }
}

test('teardown', async () => { await anvil.stop() })

test.run()
