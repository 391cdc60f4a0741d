// `dbc dashboard`: prints a one-time login link to the node's web dashboard (it opens nothing by
// itself). The link is valid for 5 minutes and works once; the browser then holds a session.
import type { Command } from 'commander'
import { ApiClient } from '../api/client.js'
import { printJson } from './output.js'
import { dataDirOf } from './context.js'

export function registerDashboardCommand (program: Command): void {
  program.command('dashboard')
    .description('print a one-time login link to this node\'s web dashboard (valid 5 minutes, works once)')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const { url } = await ApiClient.connect(dataDirOf(cmd)).call<{ url: string }>('POST', '/v1/dashboard/link')
      if (opts.json === true) return printJson({ url })
      process.stdout.write(`${url}\n`)
      if (process.stdout.isTTY === true) process.stderr.write('open it in a browser on this machine (the dashboard listens on 127.0.0.1 only); it works once, for 5 minutes\n')
    })
}
