// The `dbc` command.
import { Command, CommanderError } from 'commander'
import { registerNodeCommands } from './node.js'
import { registerNetworkCommands } from './network.js'
import { registerExtraCommands } from './extra.js'
import { registerChainServe } from './chain-serve.js'
import { printError } from './output.js'

export function buildProgram (): Command {
  const program = new Command('dbc')
    .description('dbc-overlay: a peer-to-peer network where GPU owners rent out compute\n\n' +
      'Start a node with `dbc node start`, then submit work with `dbc job submit FILE`.\n' +
      'Every command talks to the node of one data dir (default ~/.dbc).')
    .version('0.1.0', '-V, --version')
    .option('--data-dir <dir>', 'node data directory (identity, config, state); env DBC_DATA_DIR; default ~/.dbc')
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
  registerNodeCommands(program)
  registerNetworkCommands(program)
  registerExtraCommands(program)
  const chain = program.commands.find(c => c.name() === 'chain') ?? program.command('chain').description('the settlement chain this node uses')
  registerChainServe(chain)
  for (const c of allCommands(program)) c.exitOverride()
  return program
}

function allCommands (c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)]
}

async function main (): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors (already printed by commander) exit 2
      process.exit(err.exitCode === 0 ? 0 : 2)
    }
    process.exit(printError(err))
  }
}

await main()
