// Helpers for the training integration tests: training peers as separate processes
// (src/training/peer-main.ts) and a coordinator host in the test process, all on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, type Host } from '../../src/net/host.js'
import { TrainingTransport } from '../../src/training/transport.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface PeerProcess {
  peerId: string
  addrs: string[]
  child: ChildProcess
  /** Resolves with the next JSON line the peer prints that matches `pred`. */
  next: (pred: (m: any) => boolean) => Promise<any>
}

export async function spawnPeer (): Promise<PeerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings=ExperimentalWarning', 'src/training/peer-main.ts'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] })
  const waiters: Array<{ pred: (m: any) => boolean, resolve: (m: any) => void }> = []
  const rl = createInterface({ input: child.stdout! })
  rl.on('line', (line) => {
    let m: any
    try { m = JSON.parse(line) } catch { return }
    const i = waiters.findIndex(w => w.pred(m))
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m)
  })
  const next = (pred: (m: any) => boolean): Promise<any> => new Promise((resolve, reject) => {
    const t = setTimeout(() => { reject(new Error('peer process did not answer in 60 s')) }, 60_000)
    waiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m) } })
  })
  const hello = await next(m => typeof m.peerId === 'string')
  return { peerId: hello.peerId, addrs: hello.addrs, child, next }
}

/** Starts `n` peer processes and connects every pair. */
export async function spawnPeers (n: number): Promise<PeerProcess[]> {
  const peers = await Promise.all(Array.from({ length: n }, async () => await spawnPeer()))
  const dials: Array<Promise<unknown>> = []
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const addr = `${peers[j].addrs[0]}`
      dials.push(peers[i].next(m => m.dialed === addr || m.dialError === addr))
      peers[i].child.stdin!.write(`dial ${addr}\n`)
    }
  }
  const results = await Promise.all(dials)
  const failed = results.filter((r: any) => r.dialError !== undefined)
  if (failed.length > 0) throw new Error(`peer dials failed: ${JSON.stringify(failed)}`)
  return peers
}

export async function stopPeers (peers: PeerProcess[]): Promise<void> {
  await Promise.all(peers.map(async p => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return
    const exited = new Promise<void>(resolve => p.child.once('exit', () => { resolve() }))
    p.child.kill('SIGTERM')
    const t = setTimeout(() => p.child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(t)
  }))
}

/** A coordinator host in this process, connected to every peer. */
export async function coordinatorHost (peers: PeerProcess[]): Promise<Host> {
  const host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  await Promise.all(peers.map(async p => await host.dial(multiaddr(p.addrs[0]), { signal: AbortSignal.timeout(10_000) })))
  return host
}

export interface TrainingCluster { peers: PeerProcess[], host: Host, transport: TrainingTransport }

/** `n` peer processes connected pairwise, a coordinator host connected to each, and a started TrainingTransport on that host. */
export async function startTrainingCluster (n: number): Promise<TrainingCluster> {
  const peers = await spawnPeers(n)
  const host = await coordinatorHost(peers)
  const transport = new TrainingTransport(host)
  await transport.start()
  return { peers, host, transport }
}

/** Stops the transport, the host and every peer process in `c.peers` (those added since too); a part never started is skipped. */
export async function stopTrainingCluster (c: Partial<TrainingCluster>): Promise<void> {
  await c.transport?.stop()
  await c.host?.stop()
  await stopPeers(c.peers ?? [])
}
