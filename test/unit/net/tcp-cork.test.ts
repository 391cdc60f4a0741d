// One socket write per libp2p message on TCP (src/net/tcp-cork.ts): two real hosts on 127.0.0.1
// echo 200 messages; the dialer's socket is written once per message (Noise's four parts go out
// as one writev), and every echo comes back whole and in order.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Socket } from 'node:net'
import type { Stream } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../../src/net/host.js'

test('a Noise message leaves a TCP socket in one write, and the echo is intact', async () => {
  const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  try {
    await b.handle('/dbc-test/cork/1', (stream: Stream) => { stream.addEventListener('message', (e) => { stream.send(e.data) }) })
    const s = await a.dialProtocol(b.getMultiaddrs()[0], '/dbc-test/cork/1')
    const roundTrip = async (i: number): Promise<Uint8Array> => await new Promise(resolve => {
      const got: Uint8Array[] = []
      let n = 0
      const on = (e: { data: { subarray: () => Uint8Array } }): void => {
        const c = e.data.subarray(); got.push(c); n += c.byteLength
        if (n >= 200) { s.removeEventListener('message', on as never); resolve(Buffer.concat(got)) }
      }
      s.addEventListener('message', on as never)
      s.send(new Uint8Array(200).fill(i % 251))
    })
    for (let i = 0; i < 20; i++) await roundTrip(i)
    // count the writes that reach any TCP socket of this process while 200 messages go each way
    const proto = Socket.prototype as unknown as { _write: (...a: unknown[]) => void, _writev: (...a: unknown[]) => void }
    const write = proto._write; const writev = proto._writev
    let writes = 0
    proto._write = function (this: Socket, ...args: unknown[]) { writes++; return write.apply(this, args) }
    proto._writev = function (this: Socket, ...args: unknown[]) { writes++; return writev.apply(this, args) }
    try {
      for (let i = 0; i < 200; i++) {
        const echo = await roundTrip(i)
        assert.is(echo.byteLength, 200)
        assert.ok(echo.every(x => x === i % 251), `echo ${i} intact`)
      }
    } finally { proto._write = write; proto._writev = writev }
    // 400 messages (200 each way): one write each, a few more for yamux window updates
    console.log(`${writes} socket writes for 400 messages`)
    assert.ok(writes <= 440, `${writes} socket writes for 400 messages (without the cork: 800 here, the parts of a message written apart)`)
  } finally {
    await a.stop(); await b.stop()
  }
})

test.run()
