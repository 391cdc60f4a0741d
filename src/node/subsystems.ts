// The subsystems a node runs, in start order. Later issues add compute, overlay, jobs, chain.
import type { NodeConfig } from './config.js'
import type { Subsystem, Location } from './daemon.js'
import { ConfigError } from '../errors.js'

export async function buildSubsystems (_config: NodeConfig): Promise<Subsystem[]> {
  return []
}

export function resolveCity (name: string): Location {
  throw new ConfigError('location', `"${name}" is a city name, but no city data set is loaded`, { hint: 'give the location as LAT,LON, e.g. 35.68,139.69' })
}
