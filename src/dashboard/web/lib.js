// Small helpers shared by the pages: reading the node's API (the session cookie authorises GETs),
// building DOM without innerHTML, and formatting amounts (wei strings -> DBC) and peer ids.

export async function getJSON (path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } })
  const body = await res.json().catch(() => ({}))
  if (!res.ok) {
    const e = new Error(body?.error?.message ?? `${res.status} ${res.statusText}`)
    e.code = body?.error?.code
    e.hint = body?.error?.hint
    throw e
  }
  return body
}

/** el('td', { class: 'num', dataset: { testid: 'x' } }, 'text', child...) */
export function el (tag, attrs = {}, ...children) {
  const svg = SVG_TAGS.has(tag)
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = String(dv)
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn)
    else e.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    e.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return e
}
const SVG_TAGS = new Set(['svg', 'g', 'path', 'circle', 'line', 'text', 'title', 'rect'])

export function table (head, rows, attrs = {}) {
  return el('table', attrs,
    el('thead', {}, el('tr', {}, head.map(h => typeof h === 'string' ? el('th', {}, h) : el('th', { class: h.class }, h.text)))),
    el('tbody', {}, rows))
}

export function card (label, value, testid) {
  return el('div', { class: 'card' }, el('div', { class: 'k' }, label), el('div', { class: 'v', dataset: testid ? { testid } : undefined }, value))
}

export function shortId (id) {
  if (typeof id !== 'string') return ''
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
}

const WEI = 10n ** 18n
/**
 * A wei amount (decimal string or bigint) as DBC: 6 decimals from 1 DBC up, every significant
 * decimal below (a provider's pay per task is often a few millionths), e.g. "0.000000513 DBC".
 */
export function dbc (wei) {
  if (wei === undefined || wei === null || wei === '') return '-'
  let v
  try { v = BigInt(wei) } catch { return String(wei) }
  const neg = v < 0n
  if (neg) v = -v
  const whole = v / WEI
  const digits = whole > 0n ? 6 : 18
  const frac = (v % WEI).toString().padStart(18, '0').slice(0, digits).replace(/0+$/, '')
  return `${neg ? '-' : ''}${whole.toLocaleString('en-US')}${frac !== '' ? '.' + frac : ''} DBC`
}

/** An amount the API gives as DBC text ("0.5 DBC", compute.payments): as given, with the unit once ("0 DBC DBC" before). */
export function dbcText (text) {
  if (text === undefined || text === null || text === '') return '-'
  const t = String(text)
  return /\bDBC$/.test(t) ? t : `${t} DBC`
}

/**
 * The provider's prices as its policy states them (status compute.policy.prices, as `dbc node
 * status` prints them): the GPU price per model when it is a map. compute.priceGpuHour is what
 * the GPUs on offer ask (0 with none), which showed "0 per GPU-hour" beside the CLI's 1.
 */
export function pricesText (prices) {
  if (prices == null || typeof prices !== 'object') return 'prices: -'
  const gpu = prices.gpuHour
  const gpuText = gpu !== null && typeof gpu === 'object'
    ? Object.entries(gpu).map(([m, v]) => `${m === '*' ? 'other GPUs' : m} ${v}`).join(', ') + ' DBC per GPU-hour'
    : `${gpu ?? '-'} DBC per GPU-hour`
  return `prices: ${prices.cpuHour ?? '-'} DBC per CPU-hour, ${gpuText}`
}

export function ms (n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-'
  return n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`
}

export function bytes (n) {
  if (!Number.isFinite(n)) return '-'
  if (n < 1024) return `${n} B`
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1048576).toFixed(2)} MiB`
}

export function when (t) {
  if (!t) return '-'
  return new Date(t).toLocaleString('en-GB', { hour12: false })
}

export function badge (text, cls = text) {
  return el('span', { class: `badge ${cls}` }, text)
}

export function errorBox (err) {
  return el('div', { class: 'panel error' }, `${err.message}`, err.hint ? el('div', { class: 'muted' }, err.hint) : null)
}

/**
 * Why a training job stands where it stands, as `dbc job status` says it: its error when it failed,
 * else the members' last refusals (of the invitation or of a round). The page showed neither: a job
 * every invited peer refused (PRICE_ABOVE_CAP) was "failed, 0 / 30" with no reason.
 */
export function trainingWhy (t) {
  if (t?.error != null) return { error: `${t.error.message ?? t.error.code ?? 'failed'}`, refusals: [] }
  const refusals = (Array.isArray(t?.refusals) ? t.refusals : []).slice(-8).map(r => ({ peer: `${r.peer}`, code: `${r.code ?? ''}`, reason: `${r.reason ?? ''}` }))
  return { error: undefined, refusals }
}

/**
 * A training job's drops from its rounds' history: one row per drop (round from 1, as the CLI
 * prints it; back: in the group now), and the peers dropped and not back. The "dropped" card
 * counted drop events (3 for 2 peers, one of them back: helper user16 #8).
 */
export function trainingDrops (t) {
  const members = Array.isArray(t?.members) ? t.members : []
  const rows = []
  for (const r of Array.isArray(t?.history) ? t.history : []) {
    for (const p of Array.isArray(r?.dropped) ? r.dropped : []) rows.push({ round: Number(r.round) + 1, peer: `${p}`, back: members.includes(p) })
  }
  return { rows, notBack: [...new Set(rows.filter(d => !d.back).map(d => d.peer))] }
}

/** A declared location with its country, as `dbc node status` prints it ("Virginia" alone was Virginia, ZA). */
export function placeText (l) {
  const name = l.name === undefined ? '' : l.country === undefined || l.name.endsWith(`, ${l.country}`) ? l.name : `${l.name}, ${l.country}`
  return `${name} (${Number(l.lat).toFixed(2)}, ${Number(l.lon).toFixed(2)})`.trim()
}
