// A provider's auto-stake on start (src/chain/auto-stake.ts) on anvil: it stakes its declared
// GPUs, nothing when they are staked already, and the difference when it now declares more than
// it staked (it checked only isStaked before, so a provider that added GPUs stayed at its first
// stake, and submitters, which lease GPU work only as far as the stake covers it, trimmed its
// offers: review F4).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DEV_PRIVATE_KEYS, startAnvil } from '../../src/chain/index.js'
import { autoStake } from '../../src/chain/auto-stake.js'
import { Nodes } from './chain-backends.js'

test('auto-stake: one unit for a CPU provider, its GPUs, then only the GPUs added since', async () => {
  const anvil = await startAnvil()
  const nodes = new Nodes(anvil.url)
  try {
    const cpu = await nodes.node(DEV_PRIVATE_KEYS[2])
    const r0 = await autoStake(cpu, 0)
    assert.equal([r0.already, r0.gpus, (await cpu.stakeOf()).gpus], [false, 1, 1], 'a CPU provider stakes one unit')
    assert.is((await autoStake(cpu, 0)).already, true)

    const gpu = await nodes.node(DEV_PRIVATE_KEYS[3])
    assert.is((await autoStake(gpu, 2)).gpus, 2)
    assert.is((await gpu.stakeOf()).gpus, 2)
    const same = await autoStake(gpu, 2)
    assert.equal([same.already, same.txHash], [true, undefined], 'nothing sent when the stake covers the GPUs')
    const more = await autoStake(gpu, 5)
    assert.equal([more.already, more.toppedUpFrom, more.gpus], [false, 2, 5])
    assert.is((await gpu.stakeOf()).gpus, 5, 'topped up to the 5 GPUs declared now (was left at 2)')
    assert.is((await autoStake(gpu, 3)).already, true, 'fewer GPUs declared: the stake stays (the contract unstakes all or nothing)')
  } finally {
    await nodes.stop()
    await anvil.stop()
  }
})

test.run()
