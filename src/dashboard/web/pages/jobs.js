// Jobs: the grid jobs this node submitted with live progress (queued / running / done / failed),
// one job task by task (per provider, each task's placement and the reasons from explain,
// results to download), and the jobs this node serves for others (slots, what each payer owes).
import { getJSON, el, table, card, shortId, badge, when, errorBox, dbcText } from '../lib.js'

const STATES = ['done', 'running', 'queued', 'failed']

function progressBar (j, width = 220) {
  const total = Math.max(1, j.tasks)
  const svg = el('svg', { class: 'bar', width, height: 12, viewBox: `0 0 ${width} 12`, role: 'img', 'aria-label': 'task progress' })
  let x = 0
  for (const s of STATES) {
    const n = j[s] ?? 0
    if (n <= 0) continue
    const w = (n / total) * width
    svg.append(el('rect', { class: s, x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 12 }, el('title', {}, `${n} ${s}`)))
    x += w
  }
  return svg
}

function jobRow (j, selected, onPick) {
  return el('tr', { class: `selectable${selected ? ' selected' : ''}`, dataset: { testid: 'job-row', job: j.jobId }, on: { click: () => onPick(j.jobId) } },
    el('td', {}, j.name ?? '-', el('div', { class: 'mono muted', title: j.jobId }, shortId(j.jobId))),
    el('td', {}, badge(j.status)),
    el('td', { class: 'num', dataset: { testid: 'job-tasks' } }, String(j.tasks)),
    el('td', { class: 'num', dataset: { testid: 'job-queued' } }, String(j.queued)),
    el('td', { class: 'num', dataset: { testid: 'job-running' } }, String(j.running)),
    el('td', { class: 'num', dataset: { testid: 'job-done' } }, String(j.done)),
    el('td', { class: 'num', dataset: { testid: 'job-failed' } }, String(j.failed)),
    el('td', {}, progressBar(j)),
    el('td', { class: 'muted' }, when(j.createdAt)))
}

function detailView (j, d, explain) {
  const parts = [el('h3', {}, `Job ${j.name ?? ''} `, el('span', { class: 'mono muted' }, j.jobId))]
  parts.push(el('div', { class: 'cards' },
    STATES.map(s => card(s, String(d.counts[s]), `detail-${s}`)),
    card('billed copies', String(j.billedCopies ?? 0)),
    explain?.placement ? card('offers used / usable', `${explain.placement.offersUsed} / ${explain.placement.usableOffers}`) : null))
  if (d.unplaced.length > 0) {
    parts.push(el('div', { class: 'panel', dataset: { testid: 'unplaced' } }, el('strong', {}, 'Waiting to be placed: '),
      el('ul', {}, d.unplaced.map(u => el('li', { dataset: { testid: 'unplaced-reason', reason: u.reason } }, `${u.tasks} task(s): ${u.text}`)))))
  }
  if (j.status === 'finished' || j.done > 0) {
    parts.push(el('p', {}, el('a', { href: `/v1/jobs/${encodeURIComponent(j.jobId)}/results`, download: `${j.jobId}-results.json`, dataset: { testid: 'results-link' } }, `Download results (${j.done} task${j.done === 1 ? '' : 's'}, JSON)`)))
  }
  parts.push(el('h3', {}, 'Per provider'))
  parts.push(d.providers.length === 0
    ? el('div', { class: 'empty' }, 'no copy has been placed yet')
    : table(['provider', { text: 'running', class: 'num' }, { text: 'done (agreed copies)', class: 'num' }, { text: 'failed', class: 'num' }, { text: 'copies', class: 'num' }, 'outcomes'],
      d.providers.map(p => el('tr', { dataset: { testid: 'provider-row', provider: p.provider } },
        el('td', { class: 'mono', title: p.provider }, shortId(p.provider)),
        el('td', { class: 'num' }, String(p.running)),
        el('td', { class: 'num', dataset: { testid: 'provider-done' } }, String(p.done)),
        el('td', { class: 'num' }, String(p.failed)),
        el('td', { class: 'num' }, String(p.copies)),
        el('td', { class: 'muted' }, Object.entries(p.byOutcome).map(([k, v]) => `${k} ${v}`).join(', '))))))
  const failures = new Map((explain?.failures ?? []).map(f => [f.index, f.reason]))
  parts.push(el('h3', {}, `Tasks${d.truncated ? ` (first ${d.tasks.length})` : ''}: placement and reason`))
  parts.push(el('div', { class: 'scroll' }, table(['task', 'state', 'copies: provider, why placed, outcome, time'],
    d.tasks.map(t => el('tr', { dataset: { testid: 'task-row', index: t.index, state: t.status } },
      el('td', { class: 'num' }, String(t.index)),
      el('td', {}, badge(t.status)),
      el('td', {}, t.copies.length === 0
        ? el('span', { class: 'muted' }, t.status === 'queued' && d.unplaced.length > 0 ? d.unplaced.map(u => u.text).join('; ') : (failures.get(t.index) ?? t.reason ?? 'waiting to be placed (providers busy or offers pending)'))
        : t.copies.map(c => el('div', { class: 'mono' }, `#${c.attempt} ${shortId(c.provider)} · ${c.reason} · ${c.outcome}${c.ms !== null ? ` · ${c.ms} ms` : ''}${c.error ? ` · ${c.error}` : ''}`))))))))
  return el('div', { class: 'panel', dataset: { testid: 'job-detail', job: j.jobId } }, parts)
}

function servedView (s) {
  return el('div', { class: 'panel', dataset: { testid: 'served' } },
    el('div', { class: 'cards' }, card('tasks running here', String(s.slots.running)), card('waiting for a slot', String(s.slots.queued)), card('tasks finished here', String(s.slots.finished)), card('refused', String(s.slots.refused))),
    s.jobs.length === 0
      ? el('div', { class: 'empty' }, 'no paid work served yet')
      : table(['job', 'chain job', 'payer', { text: 'tasks', class: 'num' }, { text: 'delivered', class: 'num' }, { text: 'signed', class: 'num' }, { text: 'behind', class: 'num' }, 'last refusal'],
        s.jobs.map(j => el('tr', { dataset: { testid: 'served-row' } },
          // the job's id as its submitter's job list and this node's log print it (from its lease)
          el('td', { class: 'mono', title: j.jobId ?? '' }, j.jobId ? j.jobId.slice(0, 16) : '-'),
          el('td', { class: 'mono', title: j.chainJobId }, shortId(j.chainJobId)),
          el('td', { class: 'mono', title: j.payer }, shortId(j.payer)),
          el('td', { class: 'num' }, String(j.tasks)),
          el('td', { class: 'num' }, dbcText(j.delivered)),
          el('td', { class: 'num' }, dbcText(j.signed)),
          el('td', { class: 'num' }, dbcText(j.behind)),
          el('td', { class: 'muted' }, j.lastRefusal ?? '')))))
}

export async function render (root, { arg } = {}) {
  const list = el('div', { class: 'panel' })
  const detail = el('div', {})
  const served = el('div', {})
  root.append(el('h2', {}, 'Jobs'), el('h3', {}, 'Submitted by this node'), list, detail, el('h3', {}, 'Served for others'), served)
  let jobs = (await getJSON('/v1/jobs')).jobs
  let picked = arg ?? jobs.find(j => j.status === 'running')?.jobId ?? jobs[jobs.length - 1]?.jobId
  const pick = (id) => { picked = id; paintList(); void paintDetail() }
  const paintList = () => {
    list.replaceChildren(jobs.length === 0
      ? el('div', { class: 'empty' }, 'no jobs submitted from this node yet (`dbc job submit FILE`)')
      : table(['job', 'status', { text: 'tasks', class: 'num' }, { text: 'queued', class: 'num' }, { text: 'running', class: 'num' }, { text: 'done', class: 'num' }, { text: 'failed', class: 'num' }, 'progress', 'submitted'],
        jobs.map(j => jobRow(j, j.jobId === picked, pick)), { dataset: { testid: 'jobs-table' } }))
  }
  const paintDetail = async () => {
    if (picked === undefined) { detail.replaceChildren(); return }
    const id = picked
    try {
      const [d, explain] = await Promise.all([getJSON(`/v1/dashboard/jobs/${encodeURIComponent(id)}`), getJSON(`/v1/jobs/${encodeURIComponent(id)}/explain`)])
      const j = jobs.find(x => x.jobId === id) ?? await getJSON(`/v1/jobs/${encodeURIComponent(id)}`)
      if (id === picked) detail.replaceChildren(detailView(j, d, explain))
    } catch (err) { detail.replaceChildren(errorBox(err)) }
  }
  const paintServed = async () => {
    try { served.replaceChildren(servedView(await getJSON('/v1/dashboard/served'))) } catch (err) { served.replaceChildren(errorBox(err)) }
  }
  paintList()
  await Promise.all([paintDetail(), paintServed()])
  let timer
  return {
    onEvent (ev) {
      if (ev.type === 'job') {
        const { type: _t, ...j } = ev
        const i = jobs.findIndex(x => x.jobId === j.jobId)
        if (i >= 0) jobs[i] = { ...jobs[i], ...j }; else jobs.push(j)
        paintList()
        if (j.jobId === picked) { clearTimeout(timer); timer = setTimeout(() => { void paintDetail() }, 300) }
      } else if (ev.type === 'slots') {
        void paintServed()
      }
    },
    dispose () { clearTimeout(timer) }
  }
}
