// The compute-peer side of a node: probes and benchmarks the machine, serves lease requests
// and tasks on /dbc/task/1.0.0, and reports its capabilities in `dbc node status`.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { ComputePeer } from '../compute/index.js'
import { registerTaskProtocol, TASK_PROTOCOL } from '../net/tasks.js'
import { ComputePeerProvider } from '../jobs/compute-provider.js'
import type { DaemonContext, Subsystem } from './daemon.js'

export interface ComputeSubsystemInit {
  /** The EVM address receipts name for payment (the chain bridge's account). */
  payoutAddress?: () => string | undefined
}

export class ComputeSubsystem implements Subsystem {
  readonly name = 'compute'
  constructor (private readonly init: ComputeSubsystemInit = {}) {}
  peer: ComputePeer | undefined
  private ctx: DaemonContext | undefined
  private tasksRun = 0

  async start (ctx: DaemonContext): Promise<void> {
    this.ctx = ctx
    const tmpDir = join(ctx.config.dataDir, 'tasks')
    mkdirSync(tmpDir, { recursive: true, mode: 0o700 })
    const peer = new ComputePeer({
      secretKey: ctx.identity.secretKey,
      declaredGpus: ctx.config.gpus === '' ? undefined : ctx.config.gpus,
      tmpDir,
      dataDir: ctx.config.dataDir,
      payoutAddress: this.init.payoutAddress?.(),
      benchmark: process.env.DBC_SKIP_BENCHMARK !== '1'
    })
    await peer.start()
    this.peer = peer
    peer.events.on('event', (e: { type?: string }) => { if (e.type === 'finished') this.tasksRun++ })
    await registerTaskProtocol(ctx.host, new ComputePeerProvider(peer), { onBadInput: ctx.reportBadInput })
    const caps = peer.capabilities()
    ctx.log.info({ cpu: caps.cpu, gpus: caps.gpus, executors: caps.executors, unavailable: caps.unavailable }, 'compute peer ready')
  }

  async stop (): Promise<void> {
    await this.ctx?.host.unhandle(TASK_PROTOCOL).catch(() => {})
    await this.peer?.stop()
  }

  status (): Record<string, unknown> {
    if (this.peer === undefined) return { ready: false }
    const c = this.peer.capabilities()
    return { cpu: c.cpu, memoryMib: c.memoryMib, gpus: c.gpus, gpuScores: c.gpuScores, executors: c.executors, unavailable: c.unavailable, priceGpuHour: c.priceGpuHour, priceCpuHour: c.priceCpuHour }
  }
}
