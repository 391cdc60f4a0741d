// A provider in its own process, driven over the parent's IPC channel (ProcessTransport):
// a ComputePeer running real executors, or a FakeProvider. Started by ProcessTransport;
// `kill -9` of this process is what a crashed peer looks like to the submitter.
import { createHash } from 'node:crypto'
import { ComputePeer } from '../compute/index.js'
import { ComputePeerProvider } from './compute-provider.js'
import { FakeProvider } from './fake-provider.js'
import type { LocalProvider } from './local-transport.js'

export interface ProviderProcessSpec {
  kind: 'compute' | 'fake'
  /** hex, 32 bytes */
  secretKey: string
  slots?: number
  heartbeatMs?: number
  /** fake only */
  liar?: boolean
  delayMs?: number
  priceCpuHour?: number
}

interface Request { id: number, op: 'offer' | 'openLease' | 'runTask' | 'closeLease' | 'cancel' | 'voucher', args: unknown[] }

const fromHex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], b => parseInt(b, 16))
const sha256Hex = (input: Uint8Array): Uint8Array => new TextEncoder().encode(createHash('sha256').update(input).digest('hex'))

async function main (): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as ProviderProcessSpec
  const secretKey = fromHex(spec.secretKey)
  let provider: LocalProvider
  if (spec.kind === 'compute') {
    const peer = new ComputePeer({ secretKey, cpuSlots: spec.slots ?? 2, memoryMib: 2048, benchmark: false, nvidiaSmi: '/nonexistent/nvidia-smi', policy: { executors: ['wasm'], priceCpuHour: spec.priceCpuHour ?? 0.05 } })
    await peer.start()
    provider = new ComputePeerProvider(peer)
  } else {
    provider = new FakeProvider({ secretKey, compute: sha256Hex, slots: spec.slots ?? 4, liar: spec.liar, delayMs: spec.delayMs, priceCpuHour: spec.priceCpuHour })
  }
  const leases = new Map<string, Uint8Array>()
  const running = new Map<number, AbortController>()
  const send = (m: unknown): void => { process.send?.(m) }
  process.on('message', (raw: unknown) => {
    const m = raw as Request
    void (async () => {
      try {
        if (m.op === 'offer') send({ id: m.id, value: await provider.offer(m.args[0] as never) })
        else if (m.op === 'openLease') {
          await provider.openLease(m.args[0] as never, m.args[1] as Uint8Array)
          const id = (m.args[0] as { leaseId: Uint8Array }).leaseId
          leases.set(Buffer.from(id).toString('hex'), id)
          send({ id: m.id, value: null })
        } else if (m.op === 'closeLease') {
          leases.delete(Buffer.from(m.args[0] as Uint8Array).toString('hex'))
          provider.closeLease?.(m.args[0] as Uint8Array)
        } else if (m.op === 'voucher') {
          send({ id: m.id, value: await provider.acceptVoucher?.(m.args[0] as never, m.args[1] as Uint8Array) ?? null })
        } else if (m.op === 'cancel') {
          running.get(m.args[0] as number)?.abort(new Error('cancelled'))
        } else if (m.op === 'runTask') {
          const ac = new AbortController()
          running.set(m.id, ac)
          try { send({ id: m.id, value: await provider.runTask(m.args[0] as never, m.args[1] as Uint8Array, { signal: ac.signal }) }) } finally { running.delete(m.id) }
        }
      } catch (err) {
        send({ id: m.id, error: (err as Error).message })
      }
    })()
  })
  process.on('disconnect', () => process.exit(0))
  setInterval(() => { if (leases.size > 0) send({ op: 'heartbeat', leaseIds: [...leases.values()], at: Date.now() }) }, spec.heartbeatMs ?? 200)
  send({ op: 'ready', provider: provider.id })
}

main().catch(err => { console.error(`provider process failed: ${(err as Error).stack ?? String(err)}`); process.exit(1) })
