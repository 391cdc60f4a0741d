// Earnings and chain: what `dbc earnings --json` shows (per job: signed by the payer, redeemed on
// chain, pending; totals), the balance and stake, and the chain's status.
import { getJSON, el, table, card, shortId, dbc, errorBox } from '../lib.js'

function earningsView (e) {
  return el('div', { class: 'panel', dataset: { testid: 'earnings' } },
    el('div', { class: 'cards' },
      card('balance', dbc(e.balance), 'balance'),
      card('stake', e.stake ? `${dbc(e.stake.amount)} (${e.stake.gpus} GPU${e.stake.gpus === 1 ? '' : 's'})` : 'none', 'stake'),
      card('signed to this node', dbc(e.totals.signed), 'total-signed'),
      card('redeemed on chain', dbc(e.totals.redeemed), 'total-redeemed'),
      card('pending', dbc(e.totals.pending), 'total-pending'),
      card('redeems in flight', String(e.inFlight))),
    el('div', { class: 'muted mono' }, `provider account ${e.account} on chain ${e.chainId}${e.contract ? `, contract ${e.contract}` : ''}`),
    el('h3', {}, 'Per job'),
    e.jobs.length === 0
      ? el('div', { class: 'empty' }, 'no vouchers yet: nothing signed to this node')
      : table(['job', 'chain job', 'payer', { text: 'signed', class: 'num' }, { text: 'redeemed', class: 'num' }, { text: 'pending', class: 'num' }, { text: 'tasks', class: 'num' }, { text: 'receipts', class: 'num' }, 'note'],
        e.jobs.map(j => el('tr', { dataset: { testid: 'earnings-row', job: j.chainJobId, signed: j.signed, redeemed: j.redeemed, pending: j.pending } },
          // the id the submitter's job list and this node's log print (known once a lease of this node named it)
          el('td', { class: 'mono', title: j.jobId ?? 'no lease of this node named this job', dataset: { testid: 'job-id' } }, j.jobId ? j.jobId.slice(0, 16) : '-'),
          el('td', { class: 'mono', title: j.chainJobId }, shortId(j.chainJobId)),
          el('td', { class: 'mono', title: j.payer }, shortId(j.payer)),
          el('td', { class: 'num', dataset: { testid: 'signed' } }, dbc(j.signed)),
          el('td', { class: 'num', dataset: { testid: 'redeemed' } }, dbc(j.redeemed)),
          el('td', { class: 'num', dataset: { testid: 'pending' } }, dbc(j.pending)),
          el('td', { class: 'num' }, j.tasks === undefined ? '-' : String(j.tasks)),
          el('td', { class: 'num' }, String(j.receiptCount)),
          el('td', { class: 'muted' }, j.note ?? (j.hold === 'waiting' ? 'waiting: below the redeem gas multiple' : j.hold === 'not-worth' ? 'not worth its gas' : '')))),
        { dataset: { testid: 'earnings-table' } }))
}

function chainView (s) {
  const redeems = Object.entries(s.redeems ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')
  return el('div', { class: 'panel', dataset: { testid: 'chain-status' } },
    el('div', { class: 'cards' },
      card('chain', `${s.chainId} (${s.kind})`, 'chain-id'),
      card('reachable', s.reachable ? 'yes' : 'no', 'chain-reachable'),
      card('block', s.block ?? '-', 'chain-block'),
      card('vouchers received / issued', `${s.vouchers?.received ?? 0} / ${s.vouchers?.issued ?? 0}`),
      card('network GPUs staked', s.networkGpus ?? '-')),
    table(['', ''], [
      el('tr', {}, el('td', {}, 'RPC'), el('td', { class: 'mono' }, s.url ?? 'embedded')),
      el('tr', {}, el('td', {}, 'contract'), el('td', { class: 'mono' }, s.contract ?? '-')),
      el('tr', {}, el('td', {}, 'account'), el('td', { class: 'mono' }, s.account)),
      el('tr', {}, el('td', {}, 'redeem transactions'), el('td', {}, redeems || 'none')),
      s.lastError ? el('tr', {}, el('td', {}, 'last error'), el('td', { class: 'error' }, `${s.lastError.code}: ${s.lastError.message}`)) : null]))
}

export async function render (root) {
  const a = el('div', {})
  const b = el('div', {})
  root.append(el('h2', {}, 'Earnings and chain'), a, el('h3', {}, 'Chain'), b)
  const paint = async () => {
    const [e, s] = await Promise.allSettled([getJSON('/v1/earnings'), getJSON('/v1/chain/status')])
    a.replaceChildren(e.status === 'fulfilled' ? earningsView(e.value) : errorBox(e.reason))
    b.replaceChildren(s.status === 'fulfilled' ? chainView(s.value) : errorBox(s.reason))
  }
  await paint()
  let timer
  return {
    onEvent (ev) {
      // earnings move when served work is paid: refresh when a slot frees, at most every 2 s
      if (ev.type !== 'slots' || timer !== undefined) return
      timer = setTimeout(() => { timer = undefined; void paint() }, 2000)
    },
    dispose () { clearTimeout(timer) }
  }
}
