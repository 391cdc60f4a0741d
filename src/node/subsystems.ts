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
import { stakedGpuCount, trainingPolicy } from './provider-policy.js'
import { DEFAULT_MIN_ROUND_S } from '../core/settlement/training.js'
import { resolveCity as resolveCityName } from '../geo/cities.js'

export async function buildSubsystems (config: NodeConfig): Promise<Subsystem[]> {
  // the chain stack (viem, the EVM) loads only when a node starts, not for every CLI command
  const { ChainSubsystem } = await import('../chain/subsystem.js')
  const gpuCount = config.gpus === '' ? 0 : parseGpuSpec(config.gpus).reduce((n, g) => n + g.count, 0)
  // the stake counts only GPUs the policy offers (slots.gpu caps the declared ones)
  const chain = new ChainSubsystem(config.chain, { network: config.network, joining: config.bootstrap.length > 0, autoStake: config.provider?.autoStake, gpus: stakedGpuCount(config, gpuCount), jobOf: (k: string): { jobId?: string, tasks?: number } | undefined => compute.payment?.jobOf(k) })
  const compute: ComputeSubsystem = new ComputeSubsystem({ payoutAddress: () => { try { return chain.bridge?.account } catch { return undefined } }, bridge: () => chain.bridge, creditTasks: config.provider?.creditTasks, minDisputeWindowS: config.provider?.minDisputeWindowS, prices: { priceCpuHour: config.provider?.priceCpuHour, priceGpuHour: config.provider?.priceGpuHour } })
  const overlay = new OverlaySubsystem({ compute: () => compute.peer, taskProvider: () => compute.taskProvider })
  const jobs = new JobsSubsystem({
    bridge: () => chain.bridge,
    requireStake: chain.settings.requireStake,
    candidates: async (req) => await overlay.candidates(req),
    taskEnvelopes: () => overlay.tasks,
    network: (peer) => overlay.network(peer)
  })
  // training members work under the provider policy: its prices, GPUs offered, slots, provider.training
  const tp = trainingPolicy(config, () => compute.peer, DEFAULT_MIN_ROUND_S)
  const training: TrainingSubsystem = new TrainingSubsystem({
    gpuCount: tp.gpuCount,
    prices: tp.prices,
    minRoundMs: tp.minRoundMs,
    serveTraining: tp.serveTraining,
    slots: () => compute.peer,
    payoutAddress: () => { try { return chain.bridge?.account } catch { return undefined } },
    payments: () => jobs.trainingPayments,
    memberPayment: () => compute.payment,
    // the overlay's frames: training's route when no connection reaches a peer (a coordinator behind NAT)
    overlay: () => overlay.tasks?.messenger,
    // group formation: matching GPUs, close to each other in predicted latency
    selectPeers: async (spec, _signal, exclude): Promise<string[]> => await overlay.trainingGroup(spec, async (peer): Promise<boolean> => await training.servesTraining(peer), exclude)
  })
  return [chain as unknown as Subsystem, compute, overlay, jobs, training]
}

export function resolveCity (name: string): Location {
  return resolveCityName(name) as Location
}
