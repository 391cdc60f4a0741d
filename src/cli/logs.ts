// `dbc job logs JOB [--follow]` and `dbc node logs [--follow] [--lines N] [--json]`.
// What a job's tasks wrote came from strangers (providers): every byte of it is stripped of control
// characters before it reaches the terminal. Heavy modules load inside the actions only.
import type { Command } from 'commander'
import { dataDirOf } from './context.js'
import { resolveJobId } from './job-id.js'
import type { JobEvent } from '../jobs/task-logs.js'

/** Adds `logs` to the `job` and `node` commands (created here when absent). */
export function registerLogCommands (program: Command): void {
  const sub = (name: string, description: string): Command => program.commands.find(c => c.name() === name) ?? program.command(name).description(description)

  sub('job', 'submit grid and training jobs; follow, explain, cancel and settle them').command('logs')
    .description('a job\'s events (placed, returned, failed with the reason, retried, ended) and what each task wrote to stderr, by task and provider')
    .argument('<job>', 'job id, or its first 16 digits as `dbc job list` prints them')
    .option('-f, --follow', 'keep printing new events until the job ends')
    .option('--json', 'print JSON (with --follow: one event per line)')
    .action(async (jobId: string, opts: { follow?: boolean, json?: boolean }, cmd: Command) => {
      const { ApiClient } = await import('../api/client.js')
      const { formatJobEvent } = await import('./logs-format.js')
      const client = ApiClient.connect(dataDirOf(cmd))
      jobId = await resolveJobId(client, jobId)
      if (opts.follow !== true) {
        const view = await client.call<{ jobId: string, status: string, events: JobEventView[] }>('GET', `/v1/jobs/${encodeURIComponent(jobId)}/logs`)
        if (opts.json === true) { process.stdout.write(JSON.stringify(view, null, 2) + '\n'); return }
        for (const e of view.events) process.stdout.write(formatJobEvent(e))
        if (view.status === 'running') process.stdout.write(`(the job is still running: \`dbc job logs ${jobId} --follow\` prints what comes next)\n`)
        return
      }
      for await (const m of client.stream<{ type: string, event?: JobEventView, status?: string }>('GET', `/v1/jobs/${encodeURIComponent(jobId)}/logs/follow`)) {
        if (opts.json === true) { process.stdout.write(JSON.stringify(m) + '\n'); continue }
        if (m.type === 'event' && m.event !== undefined) process.stdout.write(formatJobEvent(m.event))
      }
    })

  sub('node', 'run and inspect this machine\'s dbc node').command('logs')
    .description('the node\'s own log (<data-dir>/logs/node.log and the files rolled before it), one line per record')
    .option('-f, --follow', 'keep printing new lines (across the log rolling over) until Ctrl-C')
    .option('-n, --lines <n>', 'how many of the last lines to print first', (v) => Number(v), 50)
    .option('--json', 'print the raw JSON records')
    .action(async (opts: { follow?: boolean, lines: number, json?: boolean }, cmd: Command) => {
      const { lastLogLines, followLog, prettyLogLine, logDir, listLogFiles } = await import('../node/log-files.js')
      const { printable } = await import('../jobs/task-output.js')
      const { DbcError } = await import('../errors.js')
      if (!Number.isInteger(opts.lines) || opts.lines < 0) throw new DbcError('BAD_ARGUMENT', `--lines must be a whole number, got ${String(opts.lines)}`)
      const dir = logDir(dataDirOf(cmd))
      if (listLogFiles(dir).length === 0 && opts.follow !== true) {
        throw new DbcError('NO_LOG', `no node log in ${dir}`, { hint: 'the node writes it once started (`dbc node start`); pass --data-dir for another node' })
      }
      // log records hold text from peers (error messages, names): stripped for the terminal
      const print = (line: string): void => { process.stdout.write(printable(opts.json === true ? line : prettyLogLine(line)) + '\n') }
      for (const line of lastLogLines(dir, opts.lines)) print(line)
      if (opts.follow !== true) return
      const ac = new AbortController()
      process.once('SIGINT', () => { ac.abort() })
      process.once('SIGTERM', () => { ac.abort() })
      await followLog(dir, print, { signal: ac.signal })
    })

  // `dbc logs` is what one types first (user walk s15): not a command, but say which ones are
  program.command('logs', { hidden: true }).allowUnknownOption().allowExcessArguments()
    .action(async () => {
      const { DbcError } = await import('../errors.js')
      throw new DbcError('UNKNOWN_COMMAND', '`dbc logs` is not a command', { hint: 'this node\'s own log: `dbc node logs [-f]`; what a job\'s tasks did: `dbc job logs JOB [-f]`' })
    })
}

/** A job event as the API sends it (a type-only import: nothing of src/jobs loads at run time). */
export type JobEventView = JobEvent
