// Training jobs in the node's store: a job, its rounds and its newest checkpoint survive a reopen
// of the database (what a submitter killed with -9 reads back).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStore } from '../../../src/store/db.js'
import { TrainingStore } from '../../../src/training/store.js'

test('job, rounds and the newest checkpoint come back after a reopen; an older checkpoint never replaces a newer one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-training-store-'))
  try {
    const path = join(dir, 'node.db')
    let db = openStore(path)
    let s = new TrainingStore(db)
    s.createJob({ jobId: 'j', spec: { rounds: 30 }, peers: ['a', 'b'], createdAt: 1, name: 'mnist-mlp' })
    s.createJob({ jobId: 'k', spec: { rounds: 3 }, peers: ['a'], createdAt: 2 })
    s.progress('j', { round: 0, members: ['a', 'b'], loss: 2, accuracy: NaN, roundMs: 5, deadlineMs: 100, dropped: [], bytesSent: 10 })
    // before the first optimizer averaging there is no momentum to hand over
    s.saveCheckpoint('j', { jobId: 'j', round: 1, digest: 'd1', params: Float32Array.from([1, 2]), optimizer: new Float32Array(0), optimizerRound: 0, members: ['a', 'b'], ranks: { a: 0, b: 1 }, shards: 2 })
    s.saveCheckpoint('j', { jobId: 'j', round: 6, digest: 'd6', params: Float32Array.from([3, 4]), optimizer: Float32Array.from([0.5, 0.25]), optimizerRound: 5, members: ['a', 'b'], ranks: { a: 0, b: 1 }, shards: 2 })
    s.saveCheckpoint('j', { jobId: 'j', round: 4, digest: 'd4', params: Float32Array.from([9, 9]), optimizer: new Float32Array(0), optimizerRound: 0, members: ['a'], ranks: { a: 0 }, shards: 2 })
    db.close()
    db = openStore(path)
    s = new TrainingStore(db)
    const j = s.get('j')!
    assert.is(j.status, 'running')
    assert.equal(j.peers, ['a', 'b'])
    assert.equal(j.spec, { rounds: 30 })
    assert.is(j.name, 'mnist-mlp', 'the manifest\'s name is kept')
    assert.is(s.get('k')!.name, undefined)
    const cp = s.checkpoint('j')!
    assert.is(cp.round, 6)
    assert.is(cp.digest, 'd6')
    assert.equal([...cp.params], [3, 4])
    assert.equal([...cp.optimizer], [0.5, 0.25])
    assert.equal(cp.ranks, { a: 0, b: 1 })
    const h = s.history('j')
    assert.is(h.length, 1)
    assert.ok(Number.isNaN(h[0].accuracy))
    s.finish('j', { accuracy: 0.9, members: ['a', 'b'], receipts: 60, model: new Uint8Array([1, 2, 3]) })
    assert.is(s.get('j')!.status, 'done')
    assert.equal([...s.get('j')!.result!.model], [1, 2, 3])
    db.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
