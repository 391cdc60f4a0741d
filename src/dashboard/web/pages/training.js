// Training: the training jobs this node coordinates; for one job its rounds as loss and accuracy
// charts (Chart.js), bytes per round, members and the members dropped along the way.
import { getJSON, el, table, card, shortId, badge, bytes, ms, when, errorBox, trainingWhy, trainingDrops } from '../lib.js'

const charts = []

function lineChart (canvas, label, points, color, yOpts = {}) {
  if (typeof Chart === 'undefined') return undefined
  const c = new Chart(canvas, {
    type: 'line',
    data: { datasets: [{ label, data: points, borderColor: color, backgroundColor: color, pointRadius: 3, tension: 0.15, spanGaps: true }] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'round', color: '#8a95ad' }, ticks: { color: '#8a95ad', precision: 0 }, grid: { color: '#263049' } },
        y: { ticks: { color: '#8a95ad' }, grid: { color: '#263049' }, ...yOpts }
      },
      plugins: { legend: { labels: { color: '#dde3f0' } } }
    }
  })
  charts.push(c)
  return c
}

function barChart (canvas, label, points, color) {
  if (typeof Chart === 'undefined') return undefined
  const c = new Chart(canvas, {
    type: 'bar',
    data: { labels: points.map(p => p.x), datasets: [{ label, data: points.map(p => p.y), backgroundColor: color }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { x: { title: { display: true, text: 'round', color: '#8a95ad' }, ticks: { color: '#8a95ad' }, grid: { display: false } }, y: { ticks: { color: '#8a95ad', callback: v => bytes(v) }, grid: { color: '#263049' } } }, plugins: { legend: { labels: { color: '#dde3f0' } } } }
  })
  charts.push(c)
  return c
}

function destroyCharts () { while (charts.length > 0) charts.pop().destroy() }

function detail (t) {
  destroyCharts()
  // rounds from 1, as `dbc job status`, its progress lines and this page's job list print them (the
  // API counts from 0: a member dropped in "round 54" here was "round 55" in the CLI, review s13 L5)
  const h = (t.history ?? []).map(r => ({ ...r, round: Number(r.round) + 1 }))
  const loss = h.map(r => ({ x: r.round, y: r.loss }))
  const acc = h.filter(r => r.accuracy !== null && Number.isFinite(r.accuracy)).map(r => ({ x: r.round, y: r.accuracy }))
  const lossCanvas = el('canvas', { dataset: { testid: 'loss-chart' } })
  const accCanvas = el('canvas', { dataset: { testid: 'accuracy-chart' } })
  const bytesCanvas = el('canvas', { dataset: { testid: 'bytes-chart' } })
  const allMembers = new Set(h.flatMap(r => r.members))
  const drops = trainingDrops(t)
  const why = trainingWhy(t)
  const node = el('div', { class: 'panel', dataset: { testid: 'training-detail', job: t.jobId, rounds: h.length } },
    el('h3', {}, 'Training job ', el('span', { class: 'mono muted' }, t.jobId)),
    el('div', { class: 'cards' },
      card('status', t.status, 'training-status'),
      card('rounds', `${h.length} / ${t.rounds}`, 'training-rounds'),
      card('last loss', t.loss === null || t.loss === undefined ? '-' : Number(t.loss).toFixed(4)),
      card('accuracy', t.accuracy === null || t.accuracy === undefined ? '-' : `${(t.accuracy * 100).toFixed(1)}%`, 'training-accuracy'),
      card('members', String((t.members ?? []).length)),
      // peers out of the group now; the drop events apart (a member dropped in a round often comes back)
      card('dropped, not back', String(drops.notBack.length), 'training-dropped'),
      card('drop events', String(drops.rows.length), 'training-drop-events')),
    why.error === undefined ? null : el('div', { class: 'panel error', dataset: { testid: 'training-error' } }, why.error),
    why.refusals.length === 0 ? null : el('div', {}, el('h3', {}, 'Refused by members'),
      table(['peer', 'code', 'reason'], why.refusals.map(r => el('tr', { dataset: { testid: 'refusal-row' } },
        el('td', { class: 'mono', title: r.peer }, shortId(r.peer)), el('td', {}, r.code), el('td', {}, r.reason))))),
    el('div', { class: 'grid2' },
      el('div', { class: 'chart-box' }, lossCanvas),
      el('div', { class: 'chart-box' }, accCanvas)),
    el('div', { class: 'chart-box' }, bytesCanvas),
    el('h3', {}, 'Members'),
    table(['peer', { text: 'rounds in', class: 'num' }, 'in the last round'], [...allMembers].map(p => el('tr', { dataset: { testid: 'member-row' } },
      el('td', { class: 'mono', title: p }, shortId(p)),
      el('td', { class: 'num' }, String(h.filter(r => r.members.includes(p)).length)),
      el('td', {}, (t.members ?? []).includes(p) ? 'yes' : 'no')))),
    el('h3', {}, 'Dropped members'),
    drops.rows.length === 0 ? el('div', { class: 'empty' }, 'no member was dropped') : table(['round', 'peer', 'in the group now'], drops.rows.map(d => el('tr', { dataset: { testid: 'drop-row' } }, el('td', {}, String(d.round)), el('td', { class: 'mono' }, d.peer), el('td', {}, d.back ? 'yes (back since)' : 'no')))),
    el('h3', {}, 'Rounds'),
    el('div', { class: 'scroll' }, table(['round', { text: 'loss', class: 'num' }, { text: 'accuracy', class: 'num' }, { text: 'members', class: 'num' }, { text: 'bytes sent', class: 'num' }, { text: 'time', class: 'num' }],
      h.map(r => el('tr', { dataset: { testid: 'round-row' } },
        el('td', {}, String(r.round)),
        el('td', { class: 'num' }, Number(r.loss).toFixed(4)),
        el('td', { class: 'num' }, r.accuracy === null || !Number.isFinite(r.accuracy) ? '-' : `${(r.accuracy * 100).toFixed(1)}%`),
        el('td', { class: 'num' }, String(r.members.length)),
        el('td', { class: 'num' }, bytes(r.bytesSent)),
        el('td', { class: 'num' }, ms(r.roundMs)))))))
  // charts need their canvas in the document to size themselves
  queueMicrotask(() => {
    lineChart(lossCanvas, 'loss', loss, '#f5b942')
    lineChart(accCanvas, 'test accuracy', acc, '#3ecf8e', { min: 0, max: 1 })
    barChart(bytesCanvas, 'bytes sent by all members (all-reduce)', h.map(r => ({ x: r.round, y: r.bytesSent ?? 0 })), '#5aa9ff')
  })
  return node
}

export async function render (root) {
  const list = el('div', { class: 'panel' })
  const body = el('div', {})
  root.append(el('h2', {}, 'Training'), list, body)
  let jobs = (await getJSON('/v1/training')).jobs
  let picked = jobs.find(j => j.status === 'running')?.jobId ?? jobs[jobs.length - 1]?.jobId
  const paintList = () => {
    list.replaceChildren(jobs.length === 0
      ? el('div', { class: 'empty' }, 'no training jobs on this node yet')
      : table(['job', 'name', 'status', { text: 'round', class: 'num' }, { text: 'loss', class: 'num' }, { text: 'accuracy', class: 'num' }, 'started'],
        jobs.map(j => el('tr', { class: `selectable${j.jobId === picked ? ' selected' : ''}`, dataset: { testid: 'training-row', job: j.jobId }, on: { click: () => { picked = j.jobId; paintList(); void paint() } } },
          el('td', { class: 'mono', title: j.jobId }, shortId(j.jobId)),
          // the manifest's name, as `dbc job list` prints it (a text node: it is the submitter's own text)
          el('td', { dataset: { testid: 'training-name' } }, `${j.name ?? 'training'}`),
          el('td', {}, badge(j.status, j.status === 'done' ? 'finished' : j.status)),
          el('td', { class: 'num' }, `${Number(j.round) + 1} / ${j.rounds}`),
          el('td', { class: 'num' }, j.loss === null ? '-' : Number(j.loss).toFixed(4)),
          el('td', { class: 'num' }, j.accuracy === null ? '-' : `${(j.accuracy * 100).toFixed(1)}%`),
          el('td', { class: 'muted' }, when(j.createdAt))))))
  }
  const paint = async () => {
    if (picked === undefined) { destroyCharts(); body.replaceChildren(); return }
    try { body.replaceChildren(detail(await getJSON(`/v1/training/${encodeURIComponent(picked)}`))) } catch (err) { body.replaceChildren(errorBox(err)) }
  }
  paintList()
  await paint()
  // let the charts draw before the page says it is ready
  await new Promise(resolve => requestAnimationFrame(() => resolve()))
  let timer
  return {
    onEvent (ev) {
      if (ev.type !== 'training') return
      const i = jobs.findIndex(x => x.jobId === ev.jobId)
      const { type: _t, ...t } = ev
      if (i >= 0) jobs[i] = { ...jobs[i], ...t }; else jobs.push(t)
      paintList()
      if (ev.jobId === picked) { clearTimeout(timer); timer = setTimeout(() => { void paint() }, 500) }
    },
    dispose () { clearTimeout(timer); destroyCharts() }
  }
}
