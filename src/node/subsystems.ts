// The subsystems a node runs, in start order.
import type { NodeConfig } from './config.js'
import type { Subsystem, Location } from './daemon.js'
import { ComputeSubsystem } from './compute-subsystem.js'
import { JobsSubsystem } from './jobs-subsystem.js'
import { resolveCity as resolveCityName } from '../geo/cities.js'

export async function buildSubsystems (_config: NodeConfig): Promise<Subsystem[]> {
  return [new ComputeSubsystem(), new JobsSubsystem()]
}

export function resolveCity (name: string): Location {
  return resolveCityName(name) as Location
}
