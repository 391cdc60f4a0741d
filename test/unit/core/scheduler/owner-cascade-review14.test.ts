// Review s14 L4: a caught peer's owner is caught with it (4603ccb), but each sibling's own catch
// queued every sibling not yet caught again: N peers of one payout owner queued ~N^2/2 catches,
// each with a reason string nesting the one before (300 peers: 44,850). A hostile owner decides N
// (peer ids and bindings cost nothing). Now each sibling is queued once.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

/** The machine with its catch queue counted (a test double: catchProvider/drainCatches are protected). */
class CountingMachine extends JobMachine {
  queued = 0
  constructor (...args: ConstructorParameters<typeof JobMachine>) {
    super(...args)
    const push = this.pendingCatch.push.bind(this.pendingCatch)
    this.pendingCatch.push = (...items) => { this.queued += items.length; return push(...items) }
  }

  catchNow (provider: string): void {
    this.catchProvider(1, provider, 'its result disagrees with the accepted one')
    this.drainCatches()
  }
}

test('N peers of one owner: a catch queues each sibling once, and all are caught', () => {
  const policy = { taskCount: 4, redundancy: 1, quorum: 1, maxAttempts: 4, taskTimeoutMs: 60_000, leaseTimeoutMs: 1e9, stragglerFactor: 0 }
  const m = new CountingMachine(policy, new ReputationBook(), createRng(1))
  const owner = '0x' + 'aa'.repeat(20)
  const n = 300
  for (let i = 0; i < n; i++) m.handleLease(0, { leaseId: `L${i}`, provider: `p${i}`, slots: 1, owner })
  m.handleLease(0, { leaseId: 'Lh', provider: 'honest', slots: 1, owner: '0x' + 'bb'.repeat(20) })
  m.catchNow('p0')
  for (let i = 0; i < n; i++) assert.ok(m.avoidedProviders.has(`p${i}`), `p${i} caught with its owner`)
  assert.not.ok(m.avoidedProviders.has('honest'))
  assert.ok(m.queued <= n - 1, `${m.queued} catches queued for ${n - 1} siblings`)
})

test.run()
