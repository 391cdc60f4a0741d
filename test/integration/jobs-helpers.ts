// Shared setup for the job integration tests: an owner key, N fake providers, a transport.
import { createHash } from 'node:crypto'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../src/core/identity/index.js'
import { validateManifest, type Manifest, type ManifestInput } from '../../src/core/scheduler/index.js'
import { FakeProvider, LocalTransport, type FakeProviderInit } from '../../src/jobs/index.js'

export function key (n: number): { secretKey: Uint8Array, peerId: Uint8Array } {
  const secretKey = new Uint8Array(32).fill(n)
  return { secretKey, peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)) }
}

/** The task function every honest provider computes: sha256 of the JSON input, hex. */
export function compute (input: Uint8Array): Uint8Array {
  return new TextEncoder().encode(createHash('sha256').update(input).digest('hex'))
}
export function expected (value: unknown): string {
  return new TextDecoder().decode(compute(new TextEncoder().encode(JSON.stringify(value))))
}

export function manifest (m: Partial<ManifestInput>): Manifest {
  const r = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 999 } }, task: { timeoutMs: 5000, expectedMs: 1 }, ...m })
  if (!r.ok) throw new Error(JSON.stringify(r.issues))
  return r.manifest
}

export function providers (n: number, f: (i: number) => Partial<FakeProviderInit> = () => ({})): FakeProvider[] {
  return Array.from({ length: n }, (_, i) => new FakeProvider({ secretKey: key(100 + i).secretKey, compute, slots: 4, ...f(i) }))
}

export function transport (ps: FakeProvider[], owner = key(1)): LocalTransport {
  return new LocalTransport(ps, { sender: owner.peerId, heartbeatMs: 100 })
}
