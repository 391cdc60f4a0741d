// Renders bench/results/*.json into one HTML report with charts (Chart.js, inlined so the file
// works offline) and rewrites the results table in README.md between its bench markers.
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import type { BenchResult, Metric } from './lib.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..')
const ORDER = ['net', 'overlay', 'executor', 'grid', 'training', 'settlement', 'sim', 'load']

export function loadResults (): BenchResult[] {
  const dir = join(here, 'results')
  if (!existsSync(dir)) return []
  const out: BenchResult[] = []
  for (const f of readdirSync(dir).filter(f => f.endsWith('.json'))) {
    try {
      const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as BenchResult
      if (typeof r.name === 'string' && typeof r.metrics === 'object') out.push(r)
    } catch {}
  }
  const rank = (n: string): number => { const i = ORDER.indexOf(n); return i < 0 ? 99 : i }
  return out.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name))
}

function fmt (n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-'
  const a = Math.abs(n)
  if (a >= 100_000) return n.toExponential(2)
  if (a >= 1000) return n.toFixed(0)
  if (a >= 10) return n.toFixed(1)
  if (a === 0) return '0'
  return n.toPrecision(3)
}

const esc = (s: string): string => s.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c] ?? c))

interface ChartSpec { title: string, config: unknown }

const isNumArray = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every(x => typeof x === 'number')
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Charts a series of whatever shape it has: CDFs of samples, lines over rows, grouped bars. */
function seriesCharts (bench: string, name: string, v: unknown): ChartSpec[] {
  if (isObj(v) && Object.values(v).length > 0 && Object.values(v).every(isNumArray)) {
    const datasets = Object.entries(v as Record<string, number[]>).map(([k, xs]) => {
      const s = [...xs].sort((a, b) => a - b)
      const pts = []
      for (let i = 0; i < 100; i++) {
        const q = i / 99
        pts.push({ x: s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))], y: q })
      }
      return { label: k, data: pts, showLine: true, pointRadius: 0 }
    })
    return [{ title: `${bench}: ${name} (CDF)`, config: { type: 'scatter', data: { datasets }, options: { scales: { x: { type: 'logarithmic', title: { display: true, text: name } }, y: { title: { display: true, text: 'fraction' } } } } } }]
  }
  if (Array.isArray(v) && v.length > 1 && v.every(isObj)) {
    const rows = v as Array<Record<string, unknown>>
    const keys = Object.keys(rows[0]).filter(k => typeof rows[0][k] === 'number')
    if (keys.length < 2) return []
    const [x, ...ys] = keys
    return ys.slice(0, 4).map(y => ({
      title: `${bench}: ${name}: ${y} by ${x}`,
      config: { type: 'line', data: { labels: rows.map(r => fmt(r[x] as number)), datasets: [{ label: y, data: rows.map(r => r[y]) }] }, options: { scales: { x: { title: { display: true, text: x } } } } }
    }))
  }
  if (isObj(v) && Object.values(v).length > 1 && Object.values(v).every(isObj)) {
    const groups = Object.entries(v as Record<string, Record<string, unknown>>)
    const shared = Object.keys(groups[0][1]).filter(k => k !== 'n' && groups.every(([, g]) => typeof g[k] === 'number'))
    if (shared.length === 0) return []
    return shared.slice(0, 6).map(k => ({
      title: `${bench}: ${name}: ${k}`,
      config: { type: 'bar', data: { labels: groups.map(([g]) => g), datasets: [{ label: k, data: groups.map(([, g]) => g[k]) }] } }
    }))
  }
  return []
}

function ratioChart (r: BenchResult): ChartSpec | undefined {
  const ms = Object.entries(r.metrics).filter(([, m]) => m.baseline !== undefined && m.ratio !== undefined && Number.isFinite(m.ratio))
  if (ms.length === 0) return undefined
  return {
    title: `${r.name}: ours / baseline`,
    config: {
      type: 'bar',
      data: { labels: ms.map(([k]) => k), datasets: [{ label: 'ratio (ours / baseline)', data: ms.map(([, m]) => m.ratio), backgroundColor: ms.map(([, m]) => m.met === false ? '#d9534f' : m.met === true ? '#5cb85c' : '#5b8def') }] },
      options: { indexAxis: 'y', scales: { x: { type: 'logarithmic' } } }
    }
  }
}

export function renderHtml (results: BenchResult[]): string {
  const require = createRequire(import.meta.url)
  const chartJs = readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8')
  const charts: ChartSpec[] = []
  let body = ''
  for (const r of results) {
    body += `<h2 id="${esc(r.name)}">${esc(r.name)}</h2><p class="m">${esc(r.machine)} · ${esc(r.date)}</p>`
    body += '<table><tr><th>metric</th><th>value</th><th>unit</th><th>baseline</th><th>ratio</th><th>goal</th><th></th></tr>'
    for (const [k, m] of Object.entries(r.metrics) as Array<[string, Metric]>) {
      body += `<tr><td>${esc(k)}</td><td>${fmt(m.value)}</td><td>${esc(m.unit)}</td><td>${fmt(m.baseline)}</td><td>${m.ratio === undefined ? '-' : fmt(m.ratio) + '×'}</td><td>${esc(m.goal ?? '')}</td><td class="${m.met === false ? 'no' : 'yes'}">${m.met === undefined ? '' : m.met ? 'met' : 'not met'}</td></tr>`
    }
    body += '</table>'
    for (const n of r.notes ?? []) body += `<p class="n">${esc(n)}</p>`
    const mine: ChartSpec[] = []
    const rc = ratioChart(r)
    if (rc !== undefined) mine.push(rc)
    for (const [k, v] of Object.entries(r.series ?? {})) mine.push(...seriesCharts(r.name, k, v))
    body += '<div class="charts">' + mine.map((c, i) => `<div class="c"><h3>${esc(c.title)}</h3><canvas id="c${charts.length + i}"></canvas></div>`).join('') + '</div>'
    charts.push(...mine)
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>dbc-overlay benchmarks</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:right}td:first-child,th:first-child{text-align:left}.yes{color:#2a7}.no{color:#c33;font-weight:bold}.m,.n{color:#666}.charts{display:flex;flex-wrap:wrap;gap:1em}.c{width:560px}h3{font-size:13px}</style>
<script>${chartJs}</script></head><body><h1>dbc-overlay benchmarks</h1>
<p>Each figure beside its baseline measured in the same run (<code>npm run bench</code>). ${results.map(r => `<a href="#${esc(r.name)}">${esc(r.name)}</a>`).join(' · ')}</p>
${body}
<script>const specs=${JSON.stringify(charts.map(c => c.config))};specs.forEach((s,i)=>new Chart(document.getElementById('c'+i),s));</script></body></html>`
}

/** The README table's rows per benchmark and each benchmark's run line, read back from a table this file wrote. */
export function parseReadmeTable (table: string): { rows: Map<string, string[]>, runs: Map<string, string> } {
  const rows = new Map<string, string[]>()
  const runs = new Map<string, string>()
  for (const line of table.split('\n')) {
    const m = /^\| ([a-z0-9_-]+) \| /.exec(line)
    if (m !== null && m[1] !== 'bench') { const list = rows.get(m[1]) ?? []; list.push(line); rows.set(m[1], list) }
    const r = /^- `([a-z0-9_-]+)`: (.+)$/.exec(line)
    if (r !== null) runs.set(r[1], r[2])
  }
  return { rows, runs }
}

/**
 * The README's results table: a row per metric with a baseline or a goal, for each benchmark with a
 * result file here; a benchmark with none keeps its rows and run line from `previous` (the table as
 * it was), so re-rendering after one named run does not drop the others. Each benchmark's run
 * (date, machine) is listed under the table: rows from different days are not read as one run.
 */
export function readmeTable (results: BenchResult[], previous = ''): string {
  const lines = ['| bench | metric | ours | baseline (same run) | ratio | goal | |', '|---|---|---|---|---|---|---|']
  const old = parseReadmeTable(previous)
  const fresh = new Map(results.map(r => [r.name, r]))
  const rank = (n: string): number => { const i = ORDER.indexOf(n); return i < 0 ? 99 : i }
  const names = [...new Set([...fresh.keys(), ...old.rows.keys()])].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  const runs: string[] = []
  for (const name of names) {
    const r = fresh.get(name)
    if (r === undefined) {
      lines.push(...(old.rows.get(name) ?? []))
      runs.push(`- \`${name}\`: ${old.runs.get(name) ?? 'kept from an earlier table (its run date was not recorded)'}`)
      continue
    }
    for (const [k, m] of Object.entries(r.metrics)) {
      if (m.baseline === undefined && m.goal === undefined) continue
      lines.push(`| ${r.name} | ${k} | ${fmt(m.value)} ${m.unit} | ${fmt(m.baseline)} | ${m.ratio === undefined ? '-' : fmt(m.ratio) + '×'} | ${m.goal ?? ''} | ${m.met === undefined ? '' : m.met ? 'met' : '**not met**'} |`)
    }
    runs.push(`- \`${name}\`: ${r.date.slice(0, 16)} UTC on ${r.machine}`)
  }
  lines.push('', 'Each benchmark\'s run (full report with charts: `bench/results/report.html`):', ...runs)
  return lines.join('\n')
}

export function writeReport (): { html: string, results: number } {
  const results = loadResults()
  const html = join(here, 'results', 'report.html')
  writeFileSync(html, renderHtml(results))
  const readme = join(root, 'README.md')
  const text = readFileSync(readme, 'utf8')
  const start = '<!-- bench:start -->'; const end = '<!-- bench:end -->'
  const i = text.indexOf(start); const j = text.indexOf(end)
  if (i >= 0 && j > i) writeFileSync(readme, text.slice(0, i + start.length) + '\n' + readmeTable(results, text.slice(i + start.length, j)) + '\n' + text.slice(j))
  return { html, results: results.length }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = writeReport()
  console.log(`wrote ${r.html} (${r.results} benchmarks) and the README results table`)
}
