// The `dbc` command (bin/dbc.js calls runCli). Start-up time is a feature: `dbc node status` and
// `dbc id` start fast because the register* modules import only commander,
// ./output.js, ./context.js and types at the top, and each action imports what it needs
// (`await import(...)`) when it runs. Keep it so: test/unit/cli/lazy-imports.test.ts fails when
// building the program loads libp2p, viem, the EVM, zod or yaml; bench/cli-start.ts measures it.
import { Command, CommanderError } from 'commander'
import { registerNodeCommands } from './node.js'
import { registerNetworkCommands } from './network.js'
import { registerExtraCommands } from './extra.js'
import { registerChainServe } from './chain-serve.js'
import { registerDashboardCommand } from './dashboard.js'
import { registerLogCommands } from './logs.js'
import { printError, endQuietlyOnClosedPipe } from './output.js'

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
  registerDashboardCommand(program)
  registerLogCommands(program)
  const chain = program.commands.find(c => c.name() === 'chain') ?? program.command('chain').description('the settlement chain this node uses')
  registerChainServe(chain)
  for (const c of allCommands(program)) c.exitOverride()
  return program
}

function allCommands (c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)]
}

/** Runs one command line; exits the process with the command's status on errors. */
export async function runCli (argv: string[] = process.argv): Promise<void> {
  endQuietlyOnClosedPipe()
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors (already printed by commander) exit 2
      process.exit(err.exitCode === 0 ? 0 : 2)
    }
    process.exit(printError(err))
  }
}

