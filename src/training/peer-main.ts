// A standalone training peer process (tests, benchmarks, demos): a libp2p host with the
// TrainingService. Prints one JSON line {"peerId","addrs"} on stdout when ready; then reads
// commands on stdin, one per line:
//   dial <multiaddr>      connect to another peer (so dials by peer id find it)
//   join <base64 JSON>    join a running job as a late/replacement peer:
//                         {jobId, coordinator, donor, rank, shards, spec}
//   stop                  shut down
//   npx tsx src/training/peer-main.ts [--listen /ip4/127.0.0.1/tcp/0]
import { createInterface } from 'node:readline'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost } from '../net/host.js'
import { TrainingService } from './service.js'
import { createReceiptMeter } from './metering.js'
import { stateSigner } from './state-sign.js'
import { parseTrainingSpec } from './spec.js'

const args = process.argv.slice(2)
const listen = args.includes('--listen') ? args[args.indexOf('--listen') + 1] : '/ip4/127.0.0.1/tcp/0'

const privateKey = await generateKeyPair('Ed25519')
const host = await createHost({ privateKey, listen: [listen], dhtServer: false, connectionMonitor: false })
// Every round's compute is receipted, signed with this peer's identity key.
const meter = createReceiptMeter({ secretKey: privateKey.raw.subarray(0, 32), prices: { priceGpuHour: 1, priceCpuHour: 0.05 } })
// and the state it hands a joiner is signed too, as a daemon's is (src/training/subsystem.ts): a
// joiner refuses an unsigned state, so without this a replacement never loaded one (training-long)
const service = new TrainingService(host, { meter, sign: stateSigner(privateKey.raw.subarray(0, 32)) })
await service.start()
process.stdout.write(JSON.stringify({ peerId: host.peerId.toString(), addrs: host.getMultiaddrs().map(a => a.toString()) }) + '\n')

let stopping = false
async function stop (): Promise<void> {
  if (stopping) return
  stopping = true
  await service.stop()
  await host.stop()
  process.exit(0)
}
process.on('SIGTERM', () => { void stop() })
process.on('SIGINT', () => { void stop() })

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/)
  if (cmd === 'dial' && arg !== undefined) {
    host.dial(multiaddr(arg), { signal: AbortSignal.timeout(10_000) }).then(() => {
      process.stdout.write(JSON.stringify({ dialed: arg }) + '\n')
    }, (err: Error) => {
      process.stdout.write(JSON.stringify({ dialError: arg, message: err.message }) + '\n')
    })
  } else if (cmd === 'join' && arg !== undefined) {
    const j = JSON.parse(Buffer.from(arg, 'base64').toString('utf8'))
    service.join({ ...j, spec: parseTrainingSpec(j.spec) }).then((w) => {
      process.stdout.write(JSON.stringify({ joined: j.jobId }) + '\n')
      void w.done.then(() => { process.stdout.write(JSON.stringify({ jobDone: j.jobId }) + '\n') })
    }, (err: Error) => {
      process.stdout.write(JSON.stringify({ joinError: j.jobId, message: err.message }) + '\n')
    })
  } else if (cmd === 'stop') {
    void stop()
  }
})
rl.on('close', () => { void stop() })
