// The subsystems a node runs, in start order: the chain bridge (its account is the compute
// peer's payout address), the compute peer, the overlay (publishes what the compute peer
// offers; finds providers), then jobs (placed through the overlay, settled through the bridge).
import type { NodeConfig } from './config.js'
import type { Subsystem, Location } from './daemon.js'
import { ComputeSubsystem } from './compute-subsystem.js'
import { JobsSubsystem } from './jobs-subsystem.js'
import { OverlaySubsystem } from './overlay-subsystem.js'
import { TrainingSubsystem } from '../training/subsystem.js'
import { parseGpuSpec } from '../core/compute/gpu-spec.js'
import { resolveCity as resolveCityName } from '../geo/cities.js'

export async function buildSubsystems (config: NodeConfig): Promise<Subsystem[]> {
  // the chain stack (viem, the EVM) loads only when a node starts, not for every CLI command
  const { ChainSubsystem } = await import('../chain/subsystem.js')
  const gpuCount = config.gpus === '' ? 0 : parseGpuSpec(config.gpus).reduce((n, g) => n + g.count, 0)
  const chain = new ChainSubsystem(config.chain, { network: config.network, joining: config.bootstrap.length > 0, autoStake: config.provider?.autoStake, gpus: gpuCount })
  const compute = new ComputeSubsystem({ payoutAddress: () => { try { return chain.bridge?.account } catch { return undefined } }, bridge: () => chain.bridge, creditTasks: config.provider?.creditTasks, minDisputeWindowS: config.provider?.minDisputeWindowS, prices: { priceCpuHour: config.provider?.priceCpuHour, priceGpuHour: config.provider?.priceGpuHour } })
  const overlay = new OverlaySubsystem({ compute: () => compute.peer })
  const jobs = new JobsSubsystem({
    bridge: () => chain.bridge,
    candidates: async (req) => await overlay.candidates(req),
    network: (peer) => overlay.network(peer)
  })
  const training: TrainingSubsystem = new TrainingSubsystem({
    gpuCount,
    payoutAddress: () => { try { return chain.bridge?.account } catch { return undefined } },
    payments: () => jobs.trainingPayments,
    memberPayment: () => compute.payment,
    prices: { priceGpuHour: 1, priceCpuHour: 0.05 },
    // group formation: matching GPUs, close to each other in predicted latency
    selectPeers: async (spec): Promise<string[]> => await overlay.trainingGroup(spec, async (peer): Promise<boolean> => await training.servesTraining(peer))
  })
  return [chain as unknown as Subsystem, compute, overlay, jobs, training]
}

export function resolveCity (name: string): Location {
  return resolveCityName(name) as Location
}
