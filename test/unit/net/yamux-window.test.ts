// Yamux window updates (src/net/yamux-window.ts): a stream reading many small frames sends a window
// update only once its peer used half the receive window, not one per frame, and a transfer many
// windows long still flows (the sender never waits on an update that does not come).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { YamuxStream } from '@libp2p/yamux/stream'
import { lazyYamuxWindowUpdates } from '../../../src/net/yamux-window.js'
import { createHost, type Host } from '../../../src/net/host.js'

// counts the library's own window update calls that get through (installed under the half-window rule)
const proto = YamuxStream.prototype as unknown as { sendWindowUpdate: () => void }
const original = proto.sendWindowUpdate
let updates = 0
proto.sendWindowUpdate = function (this: unknown): void { updates++; original.call(this) }
lazyYamuxWindowUpdates()

const newHost = async (): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })

test('500 small frames cost a few window updates, not 500; 4 MiB (many windows) arrive whole', async () => {
  const a = await newHost()
  const b = await newHost()
  try {
    let received = 0
    let done!: () => void
    const all = new Promise<void>(resolve => { done = resolve })
    let want = 0
    await b.handle('/test/window/1', (stream: Stream) => {
      stream.addEventListener('message', (e) => {
        received += (e as unknown as { data: { byteLength: number } }).data.byteLength
        if (received >= want) done()
      })
    })
    await a.dial(b.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
    const s = await a.dialProtocol(b.peerId, '/test/window/1')
    want = 500 * 100
    const before = updates
    for (let i = 0; i < 500; i++) {
      if (!s.send(new Uint8Array(100))) await s.onDrain()
      await new Promise(resolve => setImmediate(resolve)) // one data frame each
    }
    await all
    const small = updates - before
    assert.ok(small <= 5, `${small} window updates for 500 frames of 100 bytes`)
    // many windows' worth: the sender must get its updates in time
    received = 0
    want = 4 * 1024 * 1024
    const again = new Promise<void>(resolve => { done = resolve })
    for (let sent = 0; sent < want; sent += 16 * 1024) if (!s.send(new Uint8Array(16 * 1024))) await s.onDrain()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([again, new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`only ${received} of ${want} bytes arrived in 60 s`)) }, 60_000) })])
    clearTimeout(timer) // else the file's process waits out the 60 s
    assert.is(received, want)
  } finally {
    await a.stop()
    await b.stop()
  }
})

test.run()
