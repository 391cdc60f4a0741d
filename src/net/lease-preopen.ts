// A lease's stream opened while the job's escrow deposit is mined: its negotiation (a round trip
// to the provider) overlaps the deposit instead of following it, and the lease frame is written
// only once the deposit is on chain (a provider refuses a lease without it: NO_ESCROW).
import type { Stream } from '@libp2p/interface'

/**
 * How long a stream opened early may wait for `ready`: past it (a chain with slow blocks) it is
 * dropped and a fresh one opened, since the provider gives a stream 30 s for its first frame.
 */
export const LEASE_PREOPEN_MAX_MS = 10_000

/**
 * Opens with `open()` at once and returns its stream once `ready` resolved (at once when there
 * is none); nothing is written on it before. `ready` rejecting aborts the stream and rejects
 * with its error; a stream that waited past `maxWaitMs`, failed to open or was no longer open
 * when `ready` resolved is replaced by a fresh one (one try).
 */
export async function openBeforeReady<T extends { stream: Stream }> (open: () => Promise<T>, ready: Promise<unknown> | undefined, opts: { maxWaitMs?: number, now?: () => number } = {}): Promise<T> {
  if (ready === undefined) return await open()
  const now = opts.now ?? Date.now
  const start = now()
  const opening = open().then(s => ({ s }), (err: unknown) => ({ err }))
  const failed = await ready.then(() => undefined, (err: unknown) => ({ err }))
  const o = await opening
  if (failed !== undefined) {
    if ('s' in o) o.s.stream.abort(failed.err instanceof Error ? failed.err : new Error(String(failed.err)))
    throw failed.err
  }
  // an early open that failed, or a stream the provider reset while the deposit was mined, gets one
  // fresh open now (as a lease opened after the deposit would: review19 L1); its error is the lease's
  if ('err' in o) return await open()
  if (o.s.stream.status !== 'open') return await open()
  if (now() - start <= (opts.maxWaitMs ?? LEASE_PREOPEN_MAX_MS)) return o.s
  o.s.stream.abort(new Error('the lease stream waited too long for the escrow deposit; a fresh one is opened'))
  return await open()
}
