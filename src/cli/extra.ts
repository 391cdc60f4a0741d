// Commands of later subsystems (jobs, chain, wallet, stake) register here.
import type { Command } from 'commander'

export function registerExtraCommands (_program: Command): void {}
