// A lease stream opened while the escrow deposit is mined (src/net/lease-preopen.ts): returned only
// once the deposit is done, aborted (nothing written) when it failed, replaced by a fresh stream
// when it waited past the provider's patience.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { openBeforeReady } from '../../../src/net/lease-preopen.js'

function opener (events: string[]) {
  let n = 0
  return async (): Promise<{ stream: Stream, n: number }> => {
    const k = ++n
    events.push(`open ${k}`)
    return { n: k, stream: { status: 'open', abort: (err: Error) => { events.push(`abort ${k}: ${err.message}`) } } as unknown as Stream }
  }
}

test('the stream is opened at once and handed over only once ready resolved', async () => {
  const events: string[] = []
  let done!: () => void
  const ready = new Promise<void>(resolve => { done = resolve })
  const got = openBeforeReady(opener(events), ready).then(s => { events.push(`got ${s.n}`) })
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(events, ['open 1'], 'opened before the deposit is done, not handed over')
  events.push('mined')
  done()
  await got
  assert.equal(events, ['open 1', 'mined', 'got 1'])
})

test('ready rejecting: the early stream is aborted and its error comes back', async () => {
  const events: string[] = []
  const err = await openBeforeReady(opener(events), Promise.reject(new Error('KEY_UNFUNDED'))).catch((e: Error) => e)
  assert.is((err as Error).message, 'KEY_UNFUNDED')
  assert.equal(events, ['open 1', 'abort 1: KEY_UNFUNDED'])
})

test('a wait past maxWaitMs (slow blocks): the early stream is dropped and a fresh one returned', async () => {
  const events: string[] = []
  let t = 0
  const ready = Promise.resolve().then(() => { t = 20_000 })
  const s = await openBeforeReady(opener(events), ready, { maxWaitMs: 10_000, now: () => t })
  assert.is(s.n, 2)
  assert.is(events.length, 3)
  assert.match(events[1], /^abort 1: the lease stream waited too long/)
  // no ready: just opened
  assert.is((await openBeforeReady(opener([]), undefined)).n, 1)
})

test('an early open that failed, or a stream reset while the deposit was mined, is opened once more after it (review19 L1)', async () => {
  const events: string[] = []
  let n = 0
  const failsFirst = async (): Promise<{ stream: Stream, n: number }> => {
    const k = ++n
    events.push(`open ${k}`)
    if (k === 1) throw new Error('dial failed')
    return { n: k, stream: { status: 'open' } as unknown as Stream }
  }
  assert.is((await openBeforeReady(failsFirst, Promise.resolve())).n, 2)
  assert.equal(events, ['open 1', 'open 2'])
  // the fresh open failing too: its error is the lease's
  const err = await openBeforeReady(async () => { throw new Error('still down') }, Promise.resolve()).catch((e: Error) => e)
  assert.is((err as Error).message, 'still down')
  // reset by the provider during the wait
  let m = 0
  const resetFirst = async (): Promise<{ stream: Stream, n: number }> => ({ n: ++m, stream: { status: m === 1 ? 'reset' : 'open' } as unknown as Stream })
  assert.is((await openBeforeReady(resetFirst, Promise.resolve())).n, 2)
})

test.run()
