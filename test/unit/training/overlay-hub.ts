// Training peers over an in-memory overlay (the training unit tests' double): envelopes between
// in-memory nodes through a pretend relay, and hosts no connection reaches (every dial fails).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { ChunkMessenger, type EnvelopeLink, type ChunkMessengerInit } from '../../../src/net/overlay/chunk-messenger.js'
import type { ReceivedMessage } from '../../../src/net/overlay/envelopes.js'
import { TrainingTransport, type TrainingMessage, type TrainingTransportInit } from '../../../src/training/transport.js'
import type { TrainingRouting } from '../../../src/training/overlay-route.js'
import type { WireError } from '../../../src/errors.js'

/** Envelopes between in-memory nodes through a pretend relay "R1": every send is delivered (a tick later) and acked. */
export class EnvelopeHub {
  readonly subs = new Map<string, Set<(m: ReceivedMessage) => void>>()
  sends = 0
  /** Sends that fail (no path) while it returns true: a path lost for a while. */
  failing: (n: number) => boolean = () => false
  private n = 0
  link (self: string): EnvelopeLink {
    this.subs.set(self, new Set())
    return {
      subscribe: fn => { this.subs.get(self)!.add(fn); return () => { this.subs.get(self)!.delete(fn) } },
      send: async (to, payload, opts) => {
        const nth = this.sends++
        await new Promise(resolve => setImmediate(resolve))
        if (this.failing(nth)) throw Object.assign(new Error(`path to ${to} lost`), { code: 'NO_PATH' })
        const subs = this.subs.get(to)
        if (subs === undefined) throw Object.assign(new Error(`no path to ${to}`), { code: 'NO_PATH' })
        for (const fn of subs) fn({ sender: self, messageId: String(this.n++), contentType: opts.contentType ?? 1, sequence: 0, payload, via: 'R1' })
        return { via: 'R1' }
      }
    }
  }
}

export interface Node { id: PeerId, name: string, dials: string[], transport: TrainingTransport, messenger: ChunkMessenger, bad: WireError[] }

/** A host no connection can reach, nor leave: every dial fails (two NATs, no relay that relays). */
export async function isolatedNode (hub: EnvelopeHub, name: string, opts: { routing?: TrainingRouting, frameLimit?: number, overlay?: boolean, dialMs?: number, waitMs?: number, messenger?: ChunkMessengerInit, privacy?: TrainingTransportInit['privacy'] } = {}): Promise<Node> {
  const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const dials: string[] = []
  const host: any = {
    peerId: id,
    handle: async () => {},
    unhandle: async () => {},
    dialProtocol: async (peer: PeerId) => {
      dials.push(peer.toString())
      if (opts.dialMs !== undefined) await new Promise(resolve => setTimeout(resolve, opts.dialMs))
      throw new Error(opts.dialMs !== undefined ? 'The operation was aborted' : 'connect EHOSTUNREACH')
    },
    peerStore: { get: async () => ({ addresses: [], protocols: [] }), merge: async () => {} },
    getConnections: () => []
  }
  const messenger = new ChunkMessenger(hub.link(id.toString()), { retryBackoffMs: 5, ...opts.messenger })
  const bad: WireError[] = []
  const transport = new TrainingTransport(host, {
    onBadInput: (_p, err) => { bad.push(err) },
    ...(opts.overlay !== false ? { overlay: () => messenger } : {}),
    routing: () => opts.routing,
    // a failed dial's one retry comes 250 ms later: a longer wait lets both fail first
    overlayWaitMs: opts.waitMs ?? 2000,
    ...(opts.frameLimit !== undefined ? { frameLimit: () => opts.frameLimit } : {}),
    ...(opts.privacy !== undefined ? { privacy: opts.privacy } : {})
  })
  return { id, name, dials, transport, messenger, bad }
}

export const received = (t: TrainingTransport): Array<{ from: string, msg: TrainingMessage }> => {
  const out: Array<{ from: string, msg: TrainingMessage }> = []
  t.listen((from, msg) => { out.push({ from, msg }) })
  return out
}

export async function until (cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

