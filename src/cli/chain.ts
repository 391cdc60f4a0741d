// `dbc chain status`, `dbc wallet`, `dbc stake GPUS`, `dbc job settle JOB`
import type { Command } from 'commander'
import { ApiClient } from '../api/client.js'
import { DbcError } from '../errors.js'
import { printJson } from './output.js'
import { dataDirOf } from './context.js'

async function format (): Promise<typeof import('../chain/format.js')> {
  return await import('../chain/format.js')
}

/** Turns decimal strings of wei back into bigints for the formatters. */
function big (v: any): any {
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v)
  if (Array.isArray(v)) return v.map(big)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'txHash' || k === 'batchId' || k === 'chainJobId' ? x : big(x)]))
  return v
}

export function registerChainCommands (program: Command): void {
  const chain = program.command('chain').description('the settlement chain this node uses')
  chain.command('status')
    .description('chain id, block, contract, this node\'s account and the settlement outbox')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const s = await ApiClient.connect(dataDirOf(cmd)).call<Record<string, any>>('GET', '/v1/chain/status')
      if (opts.json === true) return printJson(s)
      process.stdout.write((await format()).chainStatusLines(big(s)).join('\n') + '\n')
    })

  program.command('wallet')
    .description('this node\'s account: balance, stake, credited payouts')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const s = await ApiClient.connect(dataDirOf(cmd)).call<Record<string, any>>('GET', '/v1/wallet')
      if (opts.json === true) return printJson(s)
      const f = await format()
      process.stdout.write(f.walletLines(big(s)).join('\n') + '\n')
      if (s.payouts != null) process.stdout.write(f.payoutLines(big(s.payouts)).join('\n') + '\n')
    })

  program.command('stake')
    .description('stake for GPUS GPUs (100,000 DBC per GPU for the network\'s first 10,000 GPUs, less after)')
    .argument('<gpus>', 'number of GPUs')
    .option('--quote', 'only show what it would cost')
    .option('--json', 'print JSON')
    .action(async (gpus: string, opts, cmd: Command) => {
      const n = Number(gpus)
      if (!Number.isInteger(n) || n < 1 || n > 20_000) throw new DbcError('BAD_ARGUMENT', `GPUS must be a whole number from 1 to 20000, not "${gpus}"`)
      const client = ApiClient.connect(dataDirOf(cmd))
      const f = await format()
      if (opts.quote === true) {
        const q = await client.call<Record<string, any>>('GET', `/v1/chain/stake-quote?gpus=${n}`)
        if (opts.json === true) return printJson(q)
        process.stdout.write(f.stakeQuoteLines(BigInt(q.networkGpus), n).join('\n') + '\n')
        return
      }
      const r = await client.call<Record<string, any>>('POST', '/v1/chain/stake', { gpus: n })
      if (opts.json === true) return printJson(r)
      process.stdout.write(f.stakeLines(big(r)).join('\n') + '\n')
    })

  const job = program.commands.find(c => c.name() === 'job')
  job?.command('settle')
    .description('settle a finished job\'s usage receipts on chain now (exactly once; safe to repeat)')
    .argument('<job>', 'job id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts, cmd: Command) => {
      const r = await ApiClient.connect(dataDirOf(cmd)).call<Record<string, any>>('POST', `/v1/jobs/${encodeURIComponent(id)}/settle`, undefined, { timeoutMs: 180_000 })
      if (opts.json === true) return printJson(r)
      process.stdout.write(`${String(r.receipts)} receipts, ${(await format()).settlementLines(big(r.batches)).join('\n')}\n`)
    })
}
