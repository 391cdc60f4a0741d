// Network: a world map drawn offline (world-atlas 110m + d3-geo) with this node, its connected
// peers and the peers it knows of, links coloured by measured RTT; the routing table and the
// membership view sizes.
import { getJSON, el, table, card, shortId, ms } from '../lib.js'

const W = 960
const H = 500
let world

async function loadWorld () {
  world ??= await getJSON('vendor/countries-110m.json')
  return world
}

export function rttClass (v) {
  if (v === null || v === undefined) return 'rtt-unknown'
  return v < 30 ? 'rtt-fast' : v < 120 ? 'rtt-mid' : 'rtt-slow'
}

function drawMap (view, atlas) {
  const svg = el('svg', { class: 'map', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'world map of peers', dataset: { testid: 'map' } })
  if (typeof d3 === 'undefined' || typeof topojson === 'undefined') {
    svg.append(el('text', { x: 20, y: 40, class: 'label' }, 'map libraries missing (d3-geo, topojson-client)'))
    return svg
  }
  const projection = d3.geoNaturalEarth1().fitExtent([[8, 8], [W - 8, H - 8]], { type: 'Sphere' })
  const path = d3.geoPath(projection)
  svg.append(el('path', { class: 'sphere', d: path({ type: 'Sphere' }) }))
  const countries = topojson.feature(atlas, atlas.objects.countries)
  const g = el('g', {})
  for (const f of countries.features) g.append(el('path', { class: 'country', d: path(f) }))
  svg.append(g)
  const self = view.self
  const links = el('g', {})
  const dots = el('g', {})
  const labels = el('g', {})
  const labelled = new Set()
  for (const p of view.peers) {
    if (self.lat !== null && p.connected) {
      const d = path({ type: 'LineString', coordinates: [[self.lon, self.lat], [p.lon, p.lat]] })
      if (d) links.append(el('path', { class: `link ${rttClass(p.measuredRttMs)}`, d, dataset: { peer: p.peerId } }, el('title', {}, `${shortId(p.peerId)}: measured RTT ${ms(p.measuredRttMs)}`)))
    }
  }
  const place = (p, cls, r, tip, testid) => {
    const [x, y] = projection([p.lon, p.lat])
    dots.append(el('circle', { class: `peer ${cls}`, cx: x.toFixed(1), cy: y.toFixed(1), r, dataset: { testid, peer: p.peerId, city: p.city ?? '' } }, el('title', {}, tip)))
    const key = p.city ?? `${p.lat},${p.lon}`
    if (!labelled.has(key) && p.city) {
      labelled.add(key)
      labels.append(el('text', { class: 'label', x: (x + r + 3).toFixed(1), y: (y + 4).toFixed(1), dataset: { testid: 'map-label' } }, p.city.replace(/, [A-Z]{2}$/, '')))
    }
  }
  for (const p of view.peers) {
    const tip = `${p.peerId}\n${p.city ?? 'unknown city'} (${p.placement === 'vivaldi' ? 'placed by Vivaldi' : 'declared'})\n${p.connected ? 'connected' : 'known, not connected'}${p.provider ? ', provider' : ''}\nmeasured RTT ${ms(p.measuredRttMs)}, predicted ${ms(p.predictedRttMs)}`
    place(p, `${p.connected ? 'connected' : 'known'}${p.placement === 'vivaldi' ? ' vivaldi' : ''}`, p.provider ? 6 : 5, tip, 'map-peer')
  }
  if (self.lat !== null) place({ ...self, placement: 'declared' }, 'self', 7, `this node ${self.peerId}\n${self.city ?? ''}`, 'map-self')
  svg.append(links, dots, labels)
  return svg
}

function legend () {
  const item = (cls, text) => el('span', {}, el('span', { class: `sw ${cls}` }), text)
  return el('div', { class: 'legend' },
    item('rtt-fast', 'RTT < 30 ms'), item('rtt-mid', '30–120 ms'), item('rtt-slow', '≥ 120 ms'), item('rtt-unknown', 'not measured yet'),
    el('span', {}, '● white: this node, blue: connected, grey: known; dashed ring: placed by Vivaldi'))
}

function peerTable (view) {
  const rows = view.peers.map(p => el('tr', { dataset: { testid: 'peer-row', peer: p.peerId } },
    el('td', { class: 'mono', title: p.peerId }, shortId(p.peerId)),
    el('td', { dataset: { testid: 'peer-city' } }, p.city ?? '-'),
    el('td', {}, p.placement),
    el('td', {}, p.connected ? 'connected' : 'known'),
    el('td', {}, p.provider ? [p.executors.join(', '), p.gpus.length > 0 ? ` · ${p.gpus.join(', ')}` : ''].join('') : '-'),
    el('td', { class: `num ${rttClass(p.measuredRttMs)}` }, ms(p.measuredRttMs)),
    el('td', { class: 'num' }, ms(p.predictedRttMs))))
  for (const u of view.unplaced) {
    rows.push(el('tr', { dataset: { testid: 'peer-row', peer: u.peerId } }, el('td', { class: 'mono' }, shortId(u.peerId)), el('td', {}, '-'), el('td', {}, 'no location'), el('td', {}, 'connected'), el('td', {}, '-'), el('td', { class: 'num' }, ms(u.measuredRttMs)), el('td', { class: 'num' }, '-')))
  }
  return table(['peer', 'city', 'placed by', 'state', 'offers', { text: 'measured RTT', class: 'num' }, { text: 'predicted RTT', class: 'num' }], rows, { dataset: { testid: 'peer-table' } })
}

export async function render (root) {
  const [view, atlas] = await Promise.all([getJSON('/v1/dashboard/network'), loadWorld()])
  const body = el('div', {})
  const paint = (v) => {
    body.replaceChildren(
      el('div', { class: 'cards' },
        card('connected peers', String(v.peers.filter(p => p.connected).length + v.unplaced.length), 'connected-count'),
        card('known peers', String(v.knownPeers)),
        card('routing table (DHT)', String(v.routingTable), 'routing-table'),
        card('membership view', String(v.membershipView), 'membership-view'),
        card('this node', v.self.city ?? 'no location', 'self-city')),
      el('div', { class: 'panel' }, drawMap(v, atlas), legend()),
      el('div', { class: 'panel' }, el('h3', {}, 'Peers'), peerTable(v)))
  }
  root.append(el('h2', {}, 'Network'), body)
  paint(view)
  let timer
  return {
    onEvent (ev) {
      if (ev.type !== 'peers') return
      clearTimeout(timer)
      timer = setTimeout(() => { getJSON('/v1/dashboard/network').then(paint).catch(() => {}) }, 300)
    },
    dispose () { clearTimeout(timer) }
  }
}
