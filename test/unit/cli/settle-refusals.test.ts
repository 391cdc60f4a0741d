// `dbc job settle` says what the chain would refuse before sending anything (found by helper user
// on a local chain): `--refund` inside the dispute window sent a transaction that reverted
// "DisputeWindowOpen(0x6ece…, 1796624465)" (a bare unix time); `--close` on a closed job sent a
// second close and printed "closed: tx ..."; a job this node never paid for (a provider asking
// about a job it served) printed "payer none (no escrow deposited)" and nothing else.
// Checked against a stand-in daemon that records every request.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const CLOSED = 'c1' + '0'.repeat(62)
const NONE = 'e0' + '0'.repeat(62)
const ACCOUNT = '0xb85466e1277b800755054cf6dccb40dc4730fe28'
const now = Math.floor(Date.now() / 1000)
/** A job closed 10 s ago with an hour's dispute window: its refund is 3590 s away. */
const closedView = { chainJobId: `0x${'6e'.repeat(32)}`, payer: ACCOUNT, account: ACCOUNT, escrow: '1000', paid: '0', unspent: '1000', deadline: now + 86400, closedAt: now - 10, disputeWindow: 3600, refunded: false, refundableAt: now - 10 + 3600, refundable: false, refundAmount: '1000', providers: [], totals: { signed: '0', redeemed: '0' } }
const noneView = { ...closedView, chainJobId: `0x${'17'.repeat(32)}`, payer: `0x${'0'.repeat(40)}`, escrow: '0', unspent: '0', deadline: 0, closedAt: 0, disputeWindow: 0, refundableAt: undefined, refundAmount: '0' }
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-settle-', (req, _res, { url, json }) => {
    if (url === '/v1/jobs') return json(200, { jobs: [] })
    if (url === '/v1/training') return json(200, { jobs: [] })
    if (req.method === 'GET' && url === `/v1/chain/jobs/${CLOSED}`) return json(200, closedView)
    if (req.method === 'GET' && url === `/v1/chain/jobs/${NONE}`) return json(200, noneView)
    if (req.method === 'POST') return json(500, { error: { code: 'REVERTED', message: 'a transaction was sent' } })
    json(404, { error: { code: 'NOT_FOUND', message: url } })
  })
})

test.after(async () => { await node.close() })

const dbc = async (...args: string[]): ReturnType<StandInNode['dbc']> => await node.dbc(...args)
const posts = (): string[] => node.seen.filter(s => s.startsWith('POST'))

test('--refund inside the dispute window: when it becomes refundable, and no transaction', async () => {
  const r = await dbc('job', 'settle', CLOSED, '--refund')
  assert.is(r.code, 1, r.stderr)
  assert.match(r.stderr, `error: the escrow of job ${CLOSED} is refundable from ${new Date((now - 10 + 3600) * 1000).toISOString()} (in`)
  assert.match(r.stderr, 'providers may redeem')
  assert.equal(posts(), [])
})

test('--close on a closed job sends no second close', async () => {
  const r = await dbc('job', 'settle', CLOSED, '--close')
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, `already closed ${new Date((now - 10) * 1000).toISOString()}: no transaction sent`)
  assert.equal(posts(), [])
})

test('a job this node paid nothing for says so, and is not closed or refunded', async () => {
  const view = await dbc('job', 'settle', NONE)
  assert.is(view.code, 0, view.stderr)
  assert.match(view.stdout, `this node's account ${ACCOUNT} deposited no escrow for job ${NONE}`)
  assert.match(view.stdout, 'dbc earnings')
  const close = await dbc('job', 'settle', NONE, '--close')
  assert.is(close.code, 1)
  assert.match(close.stderr, 'deposited no escrow')
  assert.equal(posts(), [])
})

test.run()
