// A JobTransport over provider processes on this machine (IPC channel, structured clone).
// Each provider is a real OS process: `kill(id)` sends SIGKILL, and the submitter sees what
// it would see on the network (the connection drops, no more heartbeats).
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { dbc } from '../wire/gen/wire.js'
import { offerView, type JobTransport, type TransportOffer } from './transport.js'
import type { ProviderProcessSpec } from './provider-process.js'

interface Child { id: string, proc: ChildProcess, pending: Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>, alive: boolean }

// the provider's entry beside this module: provider-process.ts through tsx when running src/,
// provider-process.js on its own when running a compiled dist/ (no tsx there)
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const ENTRY = fileURLToPath(new URL(FROM_SOURCE ? './provider-process.ts' : './provider-process.js', import.meta.url))
const NODE_ARGS = [...(FROM_SOURCE ? ['--import', 'tsx'] : []), '--no-warnings', ENTRY]

export interface ProcessTransportInit {
  /** Peer id bytes of the submitter (the lease holder). */
  sender: Uint8Array
  /** Per-call limit for offers and lease opening (default 5 s). */
  requestTimeoutMs?: number
}

export class ProcessTransport implements JobTransport {
  private readonly children = new Map<string, Child>()
  private readonly listeners = new Set<(hb: { provider: string, leaseId: Uint8Array, at: number }) => void>()
  private seq = 0
  private readonly order: string[] = []

  private constructor (private readonly init: ProcessTransportInit) {}

  /** Starts one process per spec and waits until each is ready. */
  static async start (specs: ProviderProcessSpec[], init: ProcessTransportInit, opts: { signal?: AbortSignal } = {}): Promise<ProcessTransport> {
    const t = new ProcessTransport(init)
    try {
      await Promise.all(specs.map(async (s, i) => { t.order[i] = await t.spawnOne(s, opts.signal) }))
    } catch (err) {
      t.stop()
      throw err
    }
    return t
  }

  private async spawnOne (spec: ProviderProcessSpec, signal?: AbortSignal): Promise<string> {
    const proc = spawn(process.execPath, [...NODE_ARGS, JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    const child: Child = { id: '', proc, pending: new Map(), alive: true }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { proc.kill('SIGKILL'); reject(signal?.reason as Error) }
      signal?.addEventListener('abort', onAbort, { once: true })
      proc.on('message', (raw: unknown) => {
        const m = raw as { op?: string, id?: number, provider?: string, value?: unknown, error?: string, leaseIds?: Uint8Array[], at?: number }
        if (m.op === 'ready') { child.id = m.provider!; this.children.set(child.id, child); signal?.removeEventListener('abort', onAbort); resolve(); return }
        if (m.op === 'heartbeat') {
          for (const leaseId of m.leaseIds ?? []) for (const f of this.listeners) f({ provider: child.id, leaseId, at: m.at ?? Date.now() })
          return
        }
        const p = child.pending.get(m.id!)
        if (p === undefined) return
        child.pending.delete(m.id!)
        if (m.error !== undefined) p.reject(new Error(m.error)); else p.resolve(m.value)
      })
      // A send racing the child's death surfaces here; the 'exit' handler does the cleanup.
      proc.on('error', () => {})
      proc.on('exit', (code, sig) => {
        child.alive = false
        const err = new Error(`provider process ${child.id || '(starting)'} exited (${sig ?? code})`)
        for (const p of child.pending.values()) p.reject(err)
        child.pending.clear()
        reject(err)
      })
    })
    return child.id
  }

  /** Provider ids, in the order of the specs they were started from. */
  ids (): string[] { return [...this.order] }
  pid (id: string): number | undefined { return this.children.get(id)?.proc.pid }

  /** kill -9 of one provider process. */
  kill (id: string): void { this.children.get(id)?.proc.kill('SIGKILL') }

  /** Stops every provider process. */
  stop (): void { for (const c of this.children.values()) if (c.alive) c.proc.kill('SIGKILL') }

  private call<T> (id: string, op: string, args: unknown[], opts: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<T> {
    const c = this.children.get(id)
    if (c === undefined || !c.alive) return Promise.reject(new Error(`provider ${id} is unreachable`))
    const rid = ++this.seq
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => { if (timer !== undefined) clearTimeout(timer); opts.signal?.removeEventListener('abort', onAbort) }
      const onAbort = (): void => { c.pending.delete(rid); done(); if (op === 'runTask') this.post(c, { id: ++this.seq, op: 'cancel', args: [rid] }); reject(opts.signal?.reason as Error) }
      c.pending.set(rid, { resolve: v => { done(); resolve(v as T) }, reject: e => { done(); reject(e) } })
      if (opts.timeoutMs !== undefined) timer = setTimeout(() => { c.pending.delete(rid); done(); reject(new Error(`provider ${id} did not answer ${op} within ${opts.timeoutMs} ms`)) }, opts.timeoutMs)
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      if (!this.post(c, { id: rid, op, args })) { c.pending.delete(rid); done(); reject(new Error(`provider ${id} is unreachable`)) }
    })
  }

  /** Sends unless the channel is gone (the child died); never throws. */
  private post (c: Child, msg: unknown): boolean {
    if (!c.alive || !c.proc.connected) return false
    try { c.proc.send(msg as never, (err: Error | null) => { if (err !== null) { /* the exit handler rejects what is pending */ } }); return true } catch { return false }
  }

  async requestOffers (req: dbc.task.v1.ILeaseRequest, opts: { signal?: AbortSignal, exclude?: ReadonlySet<string> }): Promise<TransportOffer[]> {
    const ids = [...this.children.values()].filter(c => c.alive && opts.exclude?.has(c.id) !== true).map(c => c.id)
    const answers = await Promise.allSettled(ids.map(async id => ({ id, offer: await this.call<dbc.task.v1.IOffer>(id, 'offer', [req], { signal: opts.signal, timeoutMs: this.init.requestTimeoutMs ?? 5000 }) })))
    const out: TransportOffer[] = []
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue
      const { id, offer } = a.value
      out.push({ offer, view: offerView(offer, id, { rttMs: 1, bandwidthBytesPerSec: 1e9 }) })
    }
    return out
  }

  async openLease (provider: string, lease: dbc.task.v1.ILease, opts: { signal?: AbortSignal, ready?: Promise<unknown> }): Promise<void> {
    await opts.ready
    await this.call(provider, 'openLease', [lease, this.init.sender], { signal: opts.signal, timeoutMs: this.init.requestTimeoutMs ?? 5000 })
  }

  async runTask (provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal }): Promise<dbc.task.v1.ITaskResult> {
    return await this.call(provider, 'runTask', [task, this.init.sender], { signal: opts.signal })
  }

  async sendVoucher (provider: string, voucher: dbc.task.v1.IVoucher, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.call(provider, 'voucher', [voucher, this.init.sender], { signal: opts.signal, timeoutMs: this.init.requestTimeoutMs ?? 5000 })
  }

  closeLease (provider: string, leaseId: Uint8Array): void {
    const c = this.children.get(provider)
    if (c !== undefined) this.post(c, { id: ++this.seq, op: 'closeLease', args: [leaseId] })
  }

  onHeartbeat (listener: (hb: { provider: string, leaseId: Uint8Array, at: number }) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}
