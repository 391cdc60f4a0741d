// A group of all-reduce peers on real libp2p hosts (TCP on 127.0.0.1, one process), each with its
// own TrainingTransport: what the training integration test and `bench training` drive.
import { performance } from 'node:perf_hooks'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { AllReducePeer, type RoundResult } from '../../src/core/training/allreduce.js'
import type { CodecSpec } from '../../src/core/training/codecs.js'
import { TrainingTransport, TRAINING_MAX_FRAME } from '../../src/training/transport.js'

export async function makeHosts (n: number): Promise<Host[]> {
  const hosts = await Promise.all(Array.from({ length: n }, async () => await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })))
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await hosts[i].dial(hosts[j].getMultiaddrs()[0])
  // the dialer's side is ready before the listener's: wait until both ends see every connection
  for (let t = 0; t < 500 && !hosts.every(h => hosts.every(o => o === h || h.getConnections(o.peerId).length > 0)); t++) await new Promise(resolve => setTimeout(resolve, 20))
  return hosts
}

export interface GroupInit {
  length: number
  codec: CodecSpec
  /** Values per part (default: the machine's). */
  partValues?: number
  /** Send cap per member, bytes/s (undefined: none): a throttled member in user space. */
  sendCaps?: Array<number | undefined>
}

/** One all-reduce machine and transport per host; rounds are driven with round(). */
export class AllReduceGroup {
  readonly members: string[]
  readonly transports: TrainingTransport[]
  readonly machines: AllReducePeer[]
  private pending: ((r: RoundResult[]) => void) | undefined
  private results: RoundResult[] = []

  constructor (hosts: Host[], init: GroupInit) {
    this.members = hosts.map(h => h.peerId.toString())
    // these peers are a group by construction (no coordinator taught the transports who is a member)
    this.transports = hosts.map((h, i) => new TrainingTransport(h, { frameLimit: () => TRAINING_MAX_FRAME, maxSendBytesPerSec: init.sendCaps?.[i] }))
    this.machines = this.members.map(self => new AllReducePeer({ self, codec: init.codec, length: init.length, partValues: init.partValues }))
    this.transports.forEach((t, i) => t.listen((from, msg) => {
      if (msg.slice == null) return
      const s = msg.slice
      this.machines[i].handleChunk(performance.now(), from, { round: s.round, slice: s.slice, phase: s.phase, codec: s.codec, length: s.length, data: s.data, weight: s.weight, offset: s.offset })
      this.pump(i)
    }))
  }

  async start (): Promise<void> { for (const t of this.transports) await t.start() }
  async stop (): Promise<void> { for (const t of this.transports) await t.stop() }

  private pump (i: number): void {
    for (const o of this.machines[i].pollOutbound()) this.transports[i].send(o.to, { slice: { jobId: 'group', ...o.chunk } })
    const r = this.machines[i].pollResult()
    if (r !== undefined) {
      this.results[i] = r
      if (this.results.filter(x => x !== undefined).length === this.machines.length) this.pending?.(this.results)
    }
  }

  /** Runs one round with these vectors; resolves with every member's result (in member order). */
  async round (round: number, vectors: Float32Array[], opts: { bandwidths?: number[], weights?: number[], deadlineMs?: number } = {}): Promise<RoundResult[]> {
    this.results = []
    const done = new Promise<RoundResult[]>(resolve => { this.pending = resolve })
    this.machines.forEach((m, i) => {
      m.start(performance.now(), round, this.members, vectors[i], { deadlineMs: opts.deadlineMs ?? 120_000, weight: opts.weights?.[i], bandwidths: opts.bandwidths })
      this.pump(i)
    })
    return await done
  }
}
