// `dbc earnings` / `dbc wallet` with no node running (user16 #2): before, both said "no dbc node is
// running" though node.db holds every voucher. Now they read the store (read-only, with another
// process holding it open) and say the figures come from the stored ledger, not the live node.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dbc, tempDir } from '../../helpers/cli.js'
import { openStore } from '../../../src/store/db.js'
import { VoucherBook } from '../../../src/chain/vouchers.js'
import { Outbox } from '../../../src/chain/outbox.js'
import { ProviderLedgerStore } from '../../../src/jobs/provider-ledger-store.js'

const E18 = 10n ** 18n
const KEY = '0x' + '11'.repeat(32)
const ACCOUNT = '0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A' // the address of KEY
const JOB = ('0x' + 'ab'.repeat(32)) as `0x${string}`
const OTHER = ('0x' + 'cd'.repeat(32)) as `0x${string}`
const PAYER = ('0x' + '22'.repeat(20)) as `0x${string}`
const dir = tempDir('dbc-stored-earnings-')
const domain = { name: 'DBC', version: '1', chainId: 31337, verifyingContract: ('0x' + '33'.repeat(20)) as `0x${string}` }
const voucher = (escrowId: `0x${string}`, cumulative: bigint, receiptCount: number): any => ({
  voucher: { escrowId, provider: ACCOUNT, cumulative, receiptsRoot: '0x' + '44'.repeat(32), receiptCount }, signature: '0x' + '55'.repeat(65)
})

// a node's store as a provider leaves it: two jobs' vouchers, one redeemed in part, the ledger naming one job
const store = openStore(join(dir, 'node.db'))
const book = new VoucherBook(store)
book.accept(voucher(JOB, 3n * E18, 30), { payer: PAYER, domain }, 1000)
book.accept(voucher(OTHER, E18 / 2n, 5), { payer: PAYER, domain }, 2000)
const outbox = new Outbox(store)
const id = outbox.recordSent([{ chainJobId: JOB, provider: ACCOUNT as `0x${string}`, cumulative: 2n * E18 }], { hash: ('0x' + '66'.repeat(32)) as `0x${string}`, raw: '0x00', nonce: 0 }, 1500)
outbox.markConfirmed(id, {}, 1600)
new ProviderLedgerStore(store).save(JOB, { payer: PAYER, delivered: 3n * E18, signed: 3n * E18, tasks: 321, maxBehind: 0n, jobId: 'a1b2c3d4e5f60718' + '0'.repeat(48) })
mkdirSync(join(dir, 'chain'), { recursive: true })
writeFileSync(join(dir, 'chain', 'key'), KEY + '\n', { mode: 0o600 })
// the store stays open here (as a node starting meanwhile would hold it): the CLI opens it read-only

test('`dbc earnings` with no node running prints the stored ledger and says so', () => {
  const r = dbc(['--data-dir', dir, 'earnings'])
  assert.is(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n')
  assert.match(lines[0], /^the node is not running: figures from its stored ledger \(.*node\.db\), not the live node/)
  assert.match(r.stdout, new RegExp(`provider ${ACCOUNT} on chain 31337`, 'i'))
  // the named job: 3 signed, 2 redeemed by this node's confirmed redeem, 1 pending, 321 tasks, 30 receipts
  assert.match(r.stdout, /a1b2c3d4e5f60718\s+3 DBC\s+2 DBC\s+1 DBC\s+321\s+30/)
  // more tasks than receipts says why (user16 #10)
  assert.match(r.stdout, /\n {2}291 task\(s\) with no receipt: a task that measured no CPU time \(sub-millisecond tasks, on this kernel's clock\) bills nothing/)
  assert.match(r.stdout, /total\s+3\.5 DBC\s+2 DBC\s+1\.5 DBC/)
  assert.not.match(r.stdout, /^balance\s/m, "no balance line: the chain is not read")
  const j = JSON.parse(dbc(['--data-dir', dir, 'earnings', '--json']).stdout) as { running: boolean, totals: { signed: string }, jobs: unknown[] }
  assert.is(j.running, false)
  assert.is(j.totals.signed, (35n * E18 / 10n).toString())
  assert.is(j.jobs.length, 2)
})

test('`dbc earnings --redeem` and `dbc wallet` with no node running', () => {
  const redeem = dbc(['--data-dir', dir, 'earnings', '--redeem'])
  assert.is(redeem.code, 1)
  assert.match(redeem.stderr, /redeeming sends a transaction from the running node/)
  const w = dbc(['--data-dir', dir, 'wallet'])
  assert.is(w.code, 0, w.stderr)
  assert.match(w.stdout, /^the node is not running: its address from .*chain\/key/)
  assert.match(w.stdout, new RegExp(`address\\s+${ACCOUNT}`, 'i'))
  // a data dir that never ran a node: the same clear error as before
  const none = dbc(['--data-dir', join(dir, 'nothing'), 'earnings'])
  assert.is(none.code, 1)
  assert.match(none.stderr, /never ran a node/)
})

test('a store that cannot be read gives an error that says what to do, not a raw SQLite one (review17 L3)', () => {
  // node.db that is not a database (the unreadable case a test can make as root: a user without
  // write access to the data dir gets SQLITE_READONLY_CANTINIT at the first read of a WAL store)
  const bad = join(dir, 'bad')
  mkdirSync(bad, { recursive: true })
  writeFileSync(join(bad, 'node.db'), 'not a database, but long enough to have a header of sorts: '.repeat(20))
  const r = dbc(['--data-dir', bad, 'earnings'])
  assert.is.not(r.code, 0)
  assert.match(r.stderr, /cannot read the node's store .*node\.db/)
  assert.match(r.stderr, /--data-dir names a dbc node's data dir/)
})

test.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }) })
test.run()
