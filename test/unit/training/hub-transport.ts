// A training transport with no network (a test double): frames go, encoded and decoded, to the hub's
// transport they name, after `delayMs` (0: the next turn of the event loop).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TrainingTransport, encodeTrainingMessage, decodeTrainingMessage, type TrainingHost, type TrainingMessageInput } from '../../../src/training/transport.js'

export class HubTransport extends TrainingTransport {
  hub: HubTransport[] = []
  delayMs = 0
  secretKey = new Uint8Array(32)
  override async start (): Promise<void> {}
  override async stop (): Promise<void> {}
  override async addressesOf (): Promise<string[]> { return [] }
  override async learnAddresses (): Promise<void> {}
  override send (to: string, msg: TrainingMessageInput): void {
    const bytes = encodeTrainingMessage(msg)
    const decoded = decodeTrainingMessage(bytes instanceof Uint8Array ? bytes : bytes.subarray())
    const target = this.hub.find(p => p.self === to)
    if (target === undefined) return
    const deliver = (): void => { (target as any).dispatch(this.self, decoded) }
    if (this.delayMs > 0) setTimeout(deliver, this.delayMs)
    else setImmediate(deliver)
  }
}

/** A new transport on `hub` (a fresh identity), delivering after `delayMs`. */
export async function hubTransport (hub: HubTransport[], delayMs = 0): Promise<HubTransport> {
  const key = await generateKeyPair('Ed25519')
  const t = new HubTransport({ peerId: peerIdFromPrivateKey(key) } as unknown as TrainingHost)
  // the identity's 32-byte secret (a member signs the state it hands a joiner: stateSigner(t.secretKey))
  t.secretKey = Uint8Array.from(key.raw.subarray(0, 32))
  t.hub = hub
  t.delayMs = delayMs
  hub.push(t)
  return t
}
