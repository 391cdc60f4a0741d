// `npm run bench [-- NAME ...] [--quick]`: runs benchmarks in bench/NAME.ts, prints a table
// per benchmark and writes bench/results/NAME.json. With no name it runs them all, then renders
// bench/results/report.html and the README results table (`--report` re-renders after named runs).
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { machine, type BenchModule, type BenchResult } from './lib.js'

export const ALL = ['net', 'overlay', 'executor', 'grid', 'training', 'settlement', 'sim', 'cli-start']
const here = fileURLToPath(new URL('.', import.meta.url))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
let names = args.filter(a => !a.startsWith('--'))
// `--report` alone re-renders only: it must not start every benchmark
const all = names.length === 0 && !args.includes('--report')
if (all) names = [...ALL, 'load'].filter(n => existsSync(join(here, `${n}.ts`)))

function fmt (n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '-'
  if (Math.abs(n) >= 1000) return n.toFixed(0)
  if (Math.abs(n) >= 10) return n.toFixed(1)
  return n.toPrecision(3)
}

export function printTable (r: BenchResult): void {
  const rows = Object.entries(r.metrics).map(([k, m]) => [k, fmt(m.value), m.unit, fmt(m.baseline), m.ratio === undefined ? '-' : m.ratio.toFixed(2) + 'x', m.goal ?? '', m.met === undefined ? '' : (m.met ? 'met' : 'NOT MET')])
  const head = ['metric', 'value', 'unit', 'baseline', 'ratio', 'goal', '']
  const w = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 || i >= 5 ? c.padEnd(w[i]) : c.padStart(w[i])).join('  ')
  console.log(`\n== ${r.name} (${r.machine})`)
  console.log(line(head))
  console.log(w.map(n => '-'.repeat(n)).join('  '))
  for (const row of rows) console.log(line(row))
  for (const n of r.notes ?? []) console.log(`  note: ${n}`)
}

mkdirSync(join(here, 'results'), { recursive: true })
let failed = false
for (const name of names) {
  const file = join(here, `${name}.ts`)
  if (!existsSync(file)) {
    console.error(`no benchmark named "${name}" (expected ${file}); known: ${ALL.join(', ')}`)
    failed = true
    continue
  }
  const mod = await import(pathToFileURL(file).href) as BenchModule
  const t0 = Date.now()
  console.log(`running bench ${name}${quick ? ' (quick)' : ''}...`)
  const out = await mod.run({ quick })
  const result: BenchResult = { name, machine: machine(), date: new Date().toISOString(), ...out }
  writeFileSync(join(here, 'results', `${name}.json`), JSON.stringify(result, null, 2) + '\n')
  printTable(result)
  console.log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s, wrote bench/results/${name}.json)`)
}
// `npm run bench` (all of them) or `--report`: one HTML report and the README table
if (all || args.includes('--report')) {
  const { writeReport } = await import('./report.js')
  const r = writeReport()
  console.log(`\nwrote ${r.html} (${r.results} benchmarks) and the README results table`)
}
process.exit(failed ? 1 : 0)
