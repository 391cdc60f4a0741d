// The HTML report: one self-contained file (Chart.js UMD inlined, no network needed)
// with the summary, performance figures, invariant checks and the scenario's charts.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ChartSpec, ScenarioResult } from '../scenarios/types.js'

let chartJs: string | undefined
function chartLibrary (): string {
  chartJs ??= readFileSync(fileURLToPath(new URL('../../node_modules/chart.js/dist/chart.umd.min.js', import.meta.url)), 'utf8')
  return chartJs
}

const esc = (s: unknown): string => String(s).replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c)

function table (rows: Array<[string, unknown]>): string {
  return '<table>' + rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'number' ? fmt(v) : v)}</td></tr>`).join('') + '</table>'
}

function fmt (n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 1e6) return n.toExponential(3)
  return Number.isInteger(n) ? n.toLocaleString('en-US') : String(Number(n.toPrecision(4)))
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04']

function chartConfig (c: ChartSpec): unknown {
  const isBar = c.kind === 'bar'
  return {
    type: isBar ? 'bar' : (c.kind === 'scatter' ? 'scatter' : 'line'),
    data: {
      labels: isBar ? c.series[0]?.data.map(p => p.x) : undefined,
      datasets: c.series.map((s, i) => ({
        label: s.label,
        data: isBar ? s.data.map(p => p.y) : s.data,
        borderColor: COLORS[i % COLORS.length],
        backgroundColor: COLORS[i % COLORS.length] + (isBar ? 'cc' : '33'),
        pointRadius: c.kind === 'scatter' ? 2 : 0,
        borderWidth: 2,
        showLine: c.kind !== 'scatter'
      }))
    },
    options: {
      animation: false,
      responsive: true,
      plugins: { title: { display: true, text: c.title } },
      scales: {
        x: isBar ? { title: { display: true, text: c.xLabel } } : { type: c.logX === true ? 'logarithmic' : 'linear', title: { display: true, text: c.xLabel } },
        y: { title: { display: true, text: c.yLabel }, beginAtZero: true }
      }
    }
  }
}

export function renderHtml (results: ScenarioResult[], title = 'dbc-overlay simulation'): string {
  const sections = results.map((r, ri) => {
    const perf = r.perf
    const perfRows: Array<[string, unknown]> = [
      ['wall time (ms)', perf.wallMs], ['setup time (ms)', perf.setupMs], ['events', perf.events],
      ['events per second', perf.eventsPerSec], ['live bytes per node (heap + typed arrays, after GC)', perf.liveBytesPerNode],
      ['heap used (bytes)', perf.heapUsedBytes], ['typed arrays (bytes)', perf.arrayBufferBytes], ['RSS (bytes)', perf.rssBytes],
      ['forced GC', perf.forcedGc], ...Object.entries(perf.rates)
    ]
    const charts = r.charts.map((c, ci) => `<div class="chart"><canvas id="c${ri}_${ci}"></canvas></div>`).join('')
    const configs = r.charts.map((c, ci) => `new Chart(document.getElementById('c${ri}_${ci}'), ${JSON.stringify(chartConfig(c))});`).join('\n')
    const inv = r.invariants.map(i => `<li class="${i.ok ? 'ok' : 'bad'}">${i.ok ? 'OK' : 'FAILED'}: ${esc(i.name)} <small>(${esc(i.detail)})</small></li>`).join('')
    return `<section><h2>${esc(r.scenario)}: ${fmt(r.nodes)} nodes, seed ${r.seed}</h2>
<div class="cols"><div><h3>Summary</h3>${table(Object.entries(r.summary))}</div>
<div><h3>Performance</h3>${table(perfRows)}</div>
<div><h3>Parameters</h3>${table(Object.entries(r.params).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : v]))}</div></div>
<h3>Invariants</h3><ul>${inv}</ul>
${r.notes.length > 0 ? `<h3>Notes</h3><ul>${r.notes.map(n => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<div class="charts">${charts}</div>
<script>${configs}</script></section>`
  }).join('\n')
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#111}table{border-collapse:collapse}th,td{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
td{text-align:right;font-variant-numeric:tabular-nums}.cols{display:flex;gap:32px;flex-wrap:wrap}.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{width:560px}.ok{color:#166534}.bad{color:#b91c1c;font-weight:bold}section{margin-bottom:48px}</style>
<script>${chartLibrary()}</script></head><body><h1>${esc(title)}</h1>
${sections}
</body></html>
`
}
