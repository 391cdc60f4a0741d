// A reader that pauses (FramedStream does, 64 frames behind) must not get its stream aborted by an
// honest sender that keeps to its yamux window: the window's ceiling (YAMUX_MAX_STREAM_WINDOW) stays
// under the stream's 4 MiB read buffer. With the library's 16 MiB ceiling the buffer overflowed and
// the stream was reset (review s8, a probe by the reviewer made into this test).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../../src/net/host.js'
import { waitUntil } from '../../helpers/wait.js'

const newHost = async (): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })

test('a paused reader holds back an honest sender instead of aborting the stream; all arrives on resume', async () => {
  const a = await newHost(); const b = await newHost()
  try {
    let received = 0; let aborted = ''
    let rs: Stream | undefined
    await b.handle('/test/pause/1', (stream: Stream) => {
      rs = stream
      stream.addEventListener('message', (e) => { received += (e as unknown as { data: { byteLength: number } }).data.byteLength })
      stream.addEventListener('close', (e) => { aborted = String((e as unknown as { error?: Error }).error?.message ?? '') })
    })
    await a.dial(b.getMultiaddrs()[0])
    const s = await a.dialProtocol(b.peerId, '/test/pause/1')
    const chunk = 65536
    const WARM = 256
    // warm: 16 MiB flowing fast, so the window auto-tunes up as on a busy stream (with 2 MiB it did not)
    for (let i = 0; i < WARM; i++) if (!s.send(new Uint8Array(chunk))) await s.onDrain()
    await waitUntil('the warm-up arrived', () => received === WARM * chunk, 30_000)
    await new Promise(resolve => setTimeout(resolve, 300)) // the muxer's first ping gives it an RTT: the window tunes from there
    rs!.pause()
    // the sender goes on (20 MiB) while the reader is paused, waiting for drain as an honest sender does:
    // what the window does not let through waits in the sender's own buffer
    const total = 320
    const writer = (async () => {
      for (let i = 0; i < total && aborted === ''; i++) if (!s.send(new Uint8Array(chunk))) await s.onDrain()
    })()
    const buffered = (): number => (rs as unknown as { readBuffer: { byteLength: number } }).readBuffer.byteLength
    // a window's worth (at least the half left before the next update) lands in the paused reader's buffer
    await waitUntil('the paused reader holds what its window let through (or the stream aborted)', () => buffered() >= 1024 * 1024 || aborted !== '', 30_000)
    await new Promise(resolve => setTimeout(resolve, 300)) // an overflow would land meanwhile
    assert.is(aborted, '', 'the paused reader\'s stream was aborted')
    assert.ok(buffered() <= 4 * 1024 * 1024, `${buffered()} bytes buffered`)
    rs!.resume()
    await writer
    await waitUntil('every byte after resume', () => received === (WARM + total) * chunk || aborted !== '', 60_000)
    assert.is(aborted, '')
    assert.is(received, (WARM + total) * chunk)
  } finally {
    await a.stop(); await b.stop()
  }
})

test.run()
