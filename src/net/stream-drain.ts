// Waiting until a libp2p stream can take more bytes, without trusting every 'drain' event.
// @libp2p/utils 7 dispatches 'drain' on every stream of a connection when the connection's own
// transport drains (AbstractMessageStream.onMuxerDrain), whatever that stream's window: a yamux
// stream whose peer grants it no window (a peer that stops reading it) gets a 'drain' each time the
// connection's socket drains, its onDrain() resolves, and a writer that trusts it adds another batch
// to a write buffer that never empties (@libp2p/yamux's maxWriteBufferLength is Infinity). A
// provider whose holder reads none of its results then ran every task it was sent and buffered
// 100 MB of results in 60 s as soon as its socket reported backpressure (seen with TCP corked per
// send queue, src/net/tcp-cork.ts; a slow real link does the same). Here a drain counts only when
// the stream's own send that it triggers moved bytes out (its write buffer shrank) or left it
// needing no drain, and the stream holds at most the waited-on send plus MAX_UNSENT_BYTES; the
// stall clock restarts only when the write buffer shrank.
import type { Stream, AbortOptions } from '@libp2p/interface'

/** Unsent bytes a stream may hold when a writer goes on (beside one send of any size). */
export const MAX_UNSENT_BYTES = 1024 * 1024

type Drainable = Pick<Stream, 'writableNeedsDrain' | 'writeBufferLength' | 'addEventListener' | 'removeEventListener'>

/**
 * Resolves once the stream can take more after a send it did not take at once (of `sentBytes`,
 * default what it holds now): a drain that moved bytes out or left the stream needing none, with
 * at most `sentBytes` + MAX_UNSENT_BYTES still unsent. Rejects when the stream closes, on
 * `options.signal`, or, with `stallMs`, when its write buffer did not shrink for that long.
 */
export async function untilWritable (stream: Drainable, options: AbortOptions & { stallMs?: number, sentBytes?: number } = {}): Promise<void> {
  if (!stream.writableNeedsDrain) return
  const allowed = (options.sentBytes ?? stream.writeBufferLength) + MAX_UNSENT_BYTES
  let held = stream.writeBufferLength
  let stallAt = options.stallMs === undefined ? Infinity : Date.now() + options.stallMs
  for (;;) {
    await nextDrain(stream, options.signal, stallAt - Date.now(), () => stalledError(options.stallMs ?? 0))
    // the drain's own send ran first (its microtask was queued before this continuation)
    const now = stream.writeBufferLength
    const moved = now < held
    if (moved && options.stallMs !== undefined) stallAt = Date.now() + options.stallMs
    held = now
    if ((moved || !stream.writableNeedsDrain) && now <= allowed) return
  }
}

const stalledError = (ms: number): Error => new Error(`the peer read nothing for ${ms} ms`)

async function nextDrain (stream: Drainable, signal: AbortSignal | undefined, leftMs: number, stalled: () => Error): Promise<void> {
  signal?.throwIfAborted()
  if (leftMs <= 0) throw stalled()
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (timer !== undefined) clearTimeout(timer)
      if (err === undefined) resolve(); else reject(err)
    }
    const onDrain = (): void => { done() }
    const onClose = (evt: Event): void => { done((evt as Event & { error?: Error }).error ?? new Error('the stream closed before it drained')) }
    const onAbort = (): void => { done(signal?.reason instanceof Error ? signal.reason : new Error('aborted')) }
    const timer = Number.isFinite(leftMs) ? setTimeout(() => { done(stalled()) }, leftMs) : undefined
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

/** `p`, or the signal's reason once it aborts first. */
export async function raceSignal (p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) { await p; return }
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  try {
    await Promise.race([p, new Promise<void>((_resolve, reject) => { onAbort = () => { reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }; signal.addEventListener('abort', onAbort, { once: true }) })])
  } finally { if (onAbort !== undefined) signal.removeEventListener('abort', onAbort) }
}
