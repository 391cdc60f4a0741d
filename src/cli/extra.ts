// Commands of the subsystems beyond the node itself.
import type { Command } from 'commander'
import { registerJobCommands } from './job.js'
import { registerChainCommands } from './chain.js'

export function registerExtraCommands (program: Command): void {
  registerJobCommands(program)
  registerChainCommands(program)
}
