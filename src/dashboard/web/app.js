// The dashboard's shell: a page per hash (#network, #jobs, #training, #earnings, #node), and one
// node-wide event stream (GET /v1/events as server-sent events) that pages listen to.
import { getJSON, shortId } from './lib.js'
import * as network from './pages/network.js'
import * as jobs from './pages/jobs.js'
import * as training from './pages/training.js'
import * as earnings from './pages/earnings.js'
import * as node from './pages/node.js'

const PAGES = { network, jobs, training, earnings, node }
const root = document.getElementById('page')
let current
let token = 0

async function show () {
  const name = (location.hash.slice(1).split('/')[0] || 'network')
  const page = PAGES[name] ?? network
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === name)
  current?.dispose?.()
  current = undefined
  const mine = ++token
  // each show renders into its own container: a render that a newer show overtook writes into a
  // detached one, never next to the newer page (two maps on one page were seen under load)
  const target = document.createElement('div')
  root.replaceChildren(target)
  root.dataset.page = name
  root.dataset.ready = 'false'
  try {
    const view = await page.render(target, { arg: location.hash.split('/')[1] })
    if (mine !== token) { view?.dispose?.(); return }
    current = view
  } catch (err) {
    console.error(err)
    if (mine === token) target.append(Object.assign(document.createElement('div'), { className: 'panel error', textContent: String(err?.message ?? err) }))
  }
  if (mine === token) root.dataset.ready = 'true'
}

function connectEvents () {
  const live = document.getElementById('live')
  const es = new EventSource('/v1/events')
  es.onopen = () => { live.textContent = 'live'; live.className = 'live on' }
  es.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off' }
  es.onmessage = (m) => {
    let ev
    try { ev = JSON.parse(m.data) } catch { return }
    current?.onEvent?.(ev)
  }
}

getJSON('/v1/id').then(id => {
  const e = document.getElementById('node-id')
  e.textContent = shortId(id.peerId)
  e.title = id.peerId
}).catch(() => {})
window.addEventListener('hashchange', () => { void show() })
connectEvents()
void show()
