// Node: identity, addresses, reachability (public / relayed / behind NAT / local only) with
// advice when strangers cannot dial it, compute slots, executors, version.
import { getJSON, el, table, card, badge, errorBox, pricesText, placeText } from '../lib.js'

export async function render (root) {
  const body = el('div', {})
  root.append(el('h2', {}, 'Node'), body)
  const paint = async () => {
    const [n, s] = await Promise.all([getJSON('/v1/dashboard/node'), getJSON('/v1/status').catch(() => ({}))])
    const r = n.reachability
    const unavailable = Object.entries(n.unavailable ?? {})
    body.replaceChildren(
      el('div', { class: 'cards' },
        card('version', n.version, 'version'),
        card('network', n.network ?? '-'),
        card('reachability', badge(r.status), 'reachability'),
        card('connections', String(s.connections ?? '-')),
        card('uptime', s.uptimeMs !== undefined ? `${Math.round(s.uptimeMs / 1000)} s` : '-')),
      el('div', { class: 'panel' },
        el('h3', {}, 'Identity'),
        table(['', ''], [
          el('tr', {}, el('td', {}, 'peer id'), el('td', { class: 'mono', dataset: { testid: 'peer-id' } }, n.peerId)),
          el('tr', {}, el('td', {}, 'location'), el('td', {}, n.location ? placeText(n.location) : 'none declared')),
          el('tr', {}, el('td', {}, 'data dir'), el('td', { class: 'mono' }, s.dataDir ?? '-'))]),
        el('h3', {}, 'Addresses'),
        el('ul', { class: 'mono', dataset: { testid: 'addrs' } }, n.addrs.map(a => el('li', {}, a))),
        el('h3', {}, 'Reachability'),
        el('p', {}, badge(r.status), ` ${r.publicAddrs.length} public address(es), ${r.relayAddrs.length} relay address(es), ${r.inbound} inbound connection(s)`),
        r.advice.length > 0 ? el('ul', { class: 'advice', dataset: { testid: 'advice' } }, r.advice.map(a => el('li', {}, a))) : el('p', { class: 'muted' }, 'strangers can dial this node directly')),
      el('div', { class: 'panel' },
        el('h3', {}, 'Compute'),
        el('div', { class: 'cards' },
          card('CPU slots', String(n.slots.cpuSlots ?? '-'), 'cpu-slots'),
          card('running', String(n.slots.running)),
          card('queued', String(n.slots.queued)),
          card('finished', String(n.slots.finished)),
          card('GPUs', n.gpus.length === 0 ? 'none' : String(n.gpus.length))),
        el('p', {}, 'executors available: ', el('strong', { dataset: { testid: 'executors' } }, n.executors.join(', ') || 'none')),
        unavailable.length > 0 ? el('ul', { class: 'muted' }, unavailable.map(([k, v]) => el('li', {}, `${k}: ${v}`))) : null,
        s.compute ? el('p', { class: 'muted', dataset: { testid: 'prices' } }, pricesText(s.compute.policy?.prices ?? { cpuHour: s.compute.priceCpuHour, gpuHour: s.compute.priceGpuHour })) : null))
  }
  try { await paint() } catch (err) { body.replaceChildren(errorBox(err)) }
  return { onEvent (ev) { if (ev.type === 'peers' || ev.type === 'slots') void paint().catch(() => {}) } }
}
