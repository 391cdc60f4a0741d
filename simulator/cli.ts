// `npm run sim -- --scenario lookup --nodes 100000 --seed 1 [--count N] [--out DIR]`
// Runs one scenario, prints progress and a summary, writes DIR/<scenario>-<nodes>-<seed>.json
// and .html. Re-spawns itself once under Node with --expose-gc (for the live-memory
// figure) and a larger heap limit.
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, InvalidArgumentError } from 'commander'
import cliProgress from 'cli-progress'
import { renderHtml } from './report/html.js'
import { SCENARIOS } from './scenarios/index.js'
import type { ScenarioResult } from './scenarios/types.js'

const here = fileURLToPath(new URL('.', import.meta.url))

function positiveInt (name: string) {
  return (v: string): number => {
    const n = Number(v.replace(/_/g, ''))
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`)
    return n
  }
}

// Word values that --set accepts, mapped to the numbers scenarios read.
const WORDS: Record<string, Record<string, number>> = { tables: { joined: 0, omniscient: 1 } }

function keyValue (v: string, acc: Record<string, number>): Record<string, number> {
  const w = /^([A-Za-z]\w*)=([A-Za-z]\w*)$/.exec(v)
  if (w !== null && WORDS[w[1]]?.[w[2]] !== undefined) { acc[w[1]] = WORDS[w[1]][w[2]]; return acc }
  const m = /^([A-Za-z][\w]*)=(-?[\d.eE_]+)$/.exec(v)
  if (m === null) throw new InvalidArgumentError(`--set takes key=number (e.g. --set alpha=3) or tables=joined|omniscient, got "${v}"`)
  acc[m[1]] = Number(m[2].replace(/_/g, ''))
  return acc
}

async function respawnWithGc (): Promise<never> {
  const child = spawn(process.execPath, ['--expose-gc', `--max-old-space-size=${process.env.SIM_MAX_OLD_SPACE ?? 8192}`, '--no-warnings=ExperimentalWarning',
    '--import', 'tsx', join(here, 'cli.ts'), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, DBC_SIM_CHILD: '1' } })
  const code = await new Promise<number>(resolve => child.on('exit', (c, sig) => resolve(c ?? (sig !== null ? 1 : 0))))
  process.exit(code)
}

function printSummary (r: ScenarioResult): void {
  console.log(`\n== ${r.scenario}: ${r.nodes.toLocaleString('en-US')} nodes, seed ${r.seed}`)
  for (const [k, v] of Object.entries(r.summary)) console.log(`  ${k.padEnd(28)} ${v}`)
  console.log('  -- performance')
  console.log(`  ${'wall time'.padEnd(28)} ${(r.perf.wallMs / 1000).toFixed(2)} s (setup ${(r.perf.setupMs / 1000).toFixed(2)} s)`)
  console.log(`  ${'events per second'.padEnd(28)} ${Math.round(r.perf.eventsPerSec).toLocaleString('en-US')}`)
  console.log(`  ${'live bytes per node'.padEnd(28)} ${Math.round(r.perf.liveBytesPerNode)}${r.perf.forcedGc ? '' : ' (no forced GC: run with --expose-gc)'}`)
  for (const [k, v] of Object.entries(r.perf.rates)) console.log(`  ${k.padEnd(28)} ${v}`)
  const bad = r.invariants.filter(i => !i.ok)
  console.log(bad.length === 0 ? `  invariants: all ${r.invariants.length} hold` : `  INVARIANTS FAILED: ${bad.map(b => `${b.name} (${b.detail})`).join('; ')}`)
}

async function main (): Promise<void> {
  const program = new Command()
    .name('npm run sim --')
    .description('Runs a simulator scenario on virtual nodes and writes JSON and HTML reports.')
    .requiredOption('--scenario <name>', `one of: ${Object.keys(SCENARIOS).join(', ')}`)
    .option('--nodes <n>', 'number of virtual nodes', positiveInt('--nodes'))
    .option('--seed <n>', 'random seed (same seed, same result)', positiveInt('--seed'), 1)
    .option('--count <n>', 'scenario units: lookups, messages, jobs or rounds', positiveInt('--count'))
    .option('--lookups <n>', 'alias of --count for the lookup scenarios', positiveInt('--lookups'))
    .option('--set <key=value>', 'scenario parameter, repeatable (e.g. --set alpha=3 --set natShare=0.2)', keyValue, {})
    .option('--out <dir>', 'where to write the JSON and HTML reports', join(here, 'results'))
    .option('--no-progress', 'do not print progress')
    .option('--verbose', 'print stack traces on errors')
    .addHelpText('after', '\nScenarios:\n' + Object.entries(SCENARIOS).map(([name, sc]) => `  ${name.padEnd(11)} ${sc.describe}; --count: ${sc.countName}; default --nodes ${sc.defaultNodes}`).join('\n') +
      '\n\nExamples:\n  npm run sim -- --scenario lookup --nodes 100000 --seed 1\n  npm run sim -- --scenario lookup --nodes 20000 --set alpha=10 --set disjointPaths=10 --set loss=0.01\n  npm run sim -- --scenario churn --nodes 2000 --set session=30')
    .showHelpAfterError()
  program.parse()
  const o = program.opts<{ scenario: string, nodes?: number, seed: number, count?: number, lookups?: number, set: Record<string, number>, out: string, progress: boolean, verbose?: boolean }>()
  const sc = SCENARIOS[o.scenario]
  if (sc === undefined) program.error(`unknown scenario "${o.scenario}"; choose one of: ${Object.keys(SCENARIOS).join(', ')}`)
  if (process.env.DBC_SIM_CHILD !== '1' && (globalThis as { gc?: unknown }).gc === undefined) await respawnWithGc()

  const nodes = o.nodes ?? sc.defaultNodes
  let bar: InstanceType<typeof cliProgress.SingleBar> | undefined
  let lastLine = 0
  const onProgress = o.progress
    ? (done: number, total: number): void => {
        if (process.stderr.isTTY) {
          bar ??= new cliProgress.SingleBar({ format: `${o.scenario} [{bar}] {percentage}% | {value}/{total} | {duration}s`, stream: process.stderr }, cliProgress.Presets.shades_classic)
          if (bar.getTotal() !== total) bar.start(total, done); else bar.update(done)
        } else if (done === total || Date.now() - lastLine > 2000) {
          lastLine = Date.now()
          console.error(`  progress: ${done}/${total} (${((100 * done) / total).toFixed(0)}%)`)
        }
      }
    : undefined
  console.error(`running ${o.scenario} on ${nodes.toLocaleString('en-US')} nodes, seed ${o.seed}...`)
  const result = await sc.run({ nodes, seed: o.seed, count: o.count ?? o.lookups, extra: o.set, onProgress })
  bar?.stop()
  printSummary(result)
  const out = resolve(o.out)
  mkdirSync(out, { recursive: true })
  const base = join(out, `${o.scenario}-${nodes}-${o.seed}`)
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n')
  writeFileSync(`${base}.html`, renderHtml([result], `dbc-overlay simulation: ${o.scenario}`))
  console.log(`  wrote ${base}.json and ${base}.html`)
  if (result.invariants.some(i => !i.ok)) process.exitCode = 2
}

main().catch((err: Error) => {
  const verbose = process.argv.includes('--verbose') || process.env.DEBUG !== undefined
  console.error(`sim failed: ${err.message}`)
  if (verbose) console.error(err.stack)
  else console.error('(run with --verbose for the stack trace)')
  process.exit(1)
})
