// Settlement v4 on anvil: payer-signed cumulative vouchers (EIP-712), each redeemed by its own
// provider with every check on chain (payee = sender, staked, signer = job payer, cumulative
// minus redeemed, capped by escrow). Headline: 1,000 receipts from 10 providers = 10 redeem
// txs, one voucher of 100 receipts each, whole tx gas (21k base included) / 1,000. Also gas per
// redeem (first for a job, later ones), vouchers of several jobs in one tx, and receipts per
// second through signing + redeem + confirmation, against one redeem per receipt (same run).
import { performance } from 'node:perf_hooks'
import { keccak256, toHex, type Hex, type TransactionReceipt } from 'viem'
import { metric, type BenchModule, type Metric } from './lib.js'
import { E18, redeemArgs, signVoucher, startChainFixture, type ChainFixture, type Wallet } from '../test/payment/chain-fixture.js'
import type { SignedVoucher, Voucher } from '../src/core/settlement/voucher.js'
import { escrowIdOfHash } from '../src/core/settlement/batch.js'

const PRICE = 10n ** 15n // wei per receipt
const ROOT: Hex = `0x${'ab'.repeat(32)}`
/** v1 (settleBatch: the payer chose payees and amounts, nothing checked on chain), from contracts/README.md before v2. */
const PREVIOUS_DESIGN_GAS_PER_RECEIPT = 157

export const run: BenchModule['run'] = async ({ quick }) => {
  const f = await startChainFixture()
  const metrics: Record<string, Metric> = {}
  const series: Record<string, Array<Record<string, number>>> = { perVoucherSize: [], jobsPerRedeem: [], throughput: [] }
  const notes: string[] = []
  try {
    const payer = await f.freshWallet(10_000_000n)
    const providers: Wallet[] = []
    for (let i = 0; i < 10; i++) {
      const p = await f.freshWallet(1_000_000n)
      await f.send(p, 'stake', [p.account.address, 1], await f.read<bigint>('stakeRequired', [1]))
      providers.push(p)
    }
    let seq = 0
    const depositGas: bigint[] = []
    /** Deposits for a new job; returns its escrow id (v3: keyed by payer and job, escrowIdOf). */
    const newJob = async (coins = 100_000n): Promise<Hex> => {
      const jobId = keccak256(toHex(`bench-job-${++seq}`))
      depositGas.push((await f.send(payer, 'deposit', [jobId, (await f.now()) + 86_400n, 3600], coins * E18)).gasUsed)
      return escrowIdOfHash(payer.account.address, jobId)
    }
    const voucher = (jobId: Hex, p: Wallet, receipts: number): Voucher => ({ escrowId: jobId, provider: p.account.address, cumulative: BigInt(receipts) * PRICE, receiptsRoot: ROOT, receiptCount: receipts })
    const redeemTx = async (p: Wallet, svs: SignedVoucher[]): Promise<TransactionReceipt> => {
      const r = await f.send(p, 'redeem', redeemArgs(svs))
      if (r.logs.length !== svs.length) throw new Error(`redeem paid ${r.logs.length} of ${svs.length} vouchers`)
      return r
    }

    // Gas per receipt against the receipts one voucher covers (a redeem costs the same for any
    // count); 1 receipt per voucher is the unbatched baseline with the same checks.
    for (const n of [1, 10, 100, 1000]) {
      const j = await newJob()
      const r = await redeemTx(providers[0], [await signVoucher(payer, voucher(j, providers[0], n), f.domain)])
      series.perVoucherSize.push({ receiptsPerVoucher: n, gas: Number(r.gasUsed), gasPerReceipt: Number(r.gasUsed) / n })
    }
    const perReceiptOneEach = series.perVoucherSize[0].gas

    // Headline: 1,000 receipts from 10 providers on a fresh job (each provider's first redeem).
    const job = await newJob()
    let firstGas = 0n
    for (const p of providers) {
      const r = await redeemTx(p, [await signVoucher(payer, voucher(job, p, 100), f.domain)])
      firstGas += r.gasUsed
    }
    // Same job, next 100 receipts each: the redeemed slot already holds a value.
    let laterGas = 0n
    for (const p of providers) laterGas += (await redeemTx(p, [await signVoucher(payer, voucher(job, p, 200), f.domain)])).gasUsed
    const perReceipt = Number(firstGas) / 1000
    metrics.gas_per_receipt_1000_from_10 = metric(perReceipt, 'gas', perReceiptOneEach, '<= 1000 gas (10 providers, all checks on chain)', perReceipt <= 1000)
    metrics.gas_per_receipt_1000_from_10_later = metric(Number(laterGas) / 1000, 'gas', perReceiptOneEach)
    metrics.gas_per_redeem_first = metric(Number(firstGas) / 10, 'gas')
    metrics.gas_per_redeem_later = metric(Number(laterGas) / 10, 'gas')

    // The payer's side: a first deposit (a new escrow) and a top-up of the same one.
    metrics.gas_per_deposit_first = metric(Number(depositGas.reduce((a, b) => a + b, 0n)) / depositGas.length, 'gas')
    const topJob = `0x${'0'.repeat(63)}1` as Hex
    await f.send(payer, 'deposit', [topJob, (await f.now()) + 86_400n, 3600], E18)
    metrics.gas_per_deposit_topup = metric(Number((await f.send(payer, 'deposit', [topJob, (await f.now()) + 86_400n, 3600], E18)).gasUsed), 'gas')

    // One provider redeeming vouchers of k jobs in one tx: the marginal cost of a voucher.
    for (const k of [1, 5, 20]) {
      const svs: SignedVoucher[] = []
      for (let i = 0; i < k; i++) svs.push(await signVoucher(payer, voucher(await newJob(), providers[1], 100), f.domain))
      const r = await redeemTx(providers[1], svs)
      series.jobsPerRedeem.push({ jobs: k, gas: Number(r.gasUsed), gasPerVoucher: Number(r.gasUsed) / k })
      if (k === 20) metrics.gas_per_voucher_20_jobs_one_tx = metric(Number(r.gasUsed) / k, 'gas')
    }

    // Throughput: rounds of 1,000 receipts (10 providers x 100): the payer signs 10 vouchers,
    // the 10 providers redeem concurrently, each waits for its receipt.
    const rounds = quick ? 5 : 20
    const tj = await newJob(1_000_000n)
    let signSecs = 0
    const t0 = performance.now()
    for (let round = 1; round <= rounds; round++) {
      const ts = performance.now()
      const svs = await Promise.all(providers.map(async p => await signVoucher(payer, voucher(tj, p, 100 * round), f.domain)))
      signSecs += (performance.now() - ts) / 1000
      await Promise.all(providers.map(async (p, i) => await redeemTx(p, [svs[i]])))
    }
    const secs = (performance.now() - t0) / 1000
    // Baseline: the same flow with one voucher (and one redeem) per receipt.
    const bj = await newJob(1_000_000n)
    const perTx = quick ? 20 : 50
    const tb = performance.now()
    for (let i = 1; i <= perTx / 10; i++) {
      const svs = await Promise.all(providers.map(async p => await signVoucher(payer, voucher(bj, p, i), f.domain)))
      await Promise.all(providers.map(async (p, k) => await redeemTx(p, [svs[k]])))
    }
    const baseRate = perTx / ((performance.now() - tb) / 1000)
    metrics.receipts_per_s_sign_redeem_confirm = metric(rounds * 1000 / secs, 'receipts/s', baseRate)
    metrics.vouchers_signed_per_s = metric(rounds * 10 / signSecs, 'vouchers/s')
    series.throughput.push({ rounds, receipts: rounds * 1000, seconds: secs, signSeconds: signSecs, baselineReceipts: perTx, baselineRate: baseRate })
  } finally {
    await f.stop()
  }
  metrics.previous_design_no_checks_gas_per_receipt = metric(PREVIOUS_DESIGN_GAS_PER_RECEIPT, 'gas')
  notes.push('chain: anvil (shanghai, automine); contract deployed through the CREATE2 deployer; gas is whole-tx gasUsed (21k base and calldata included)')
  notes.push('gas_per_receipt_1000_from_10: 10 redeem txs, each provider redeeming its own voucher of 100 receipts on a fresh job (first redeem: a new storage slot); _later: the next 100 each on the same job')
  notes.push('baseline of the gas rows: one redeem per receipt (a voucher covering 1 receipt), same contract and checks')
  notes.push('receipts_per_s: payer signs (viem signTypedData) 10 vouchers of 100 receipts, 10 providers redeem concurrently and wait for confirmation; baseline: the same with 1 receipt per voucher')
  notes.push(`previous_design_no_checks: v1 settleBatch, ~${PREVIOUS_DESIGN_GAS_PER_RECEIPT} gas/receipt on the embedded EVM, not measured here: the payer chose payees and amounts and nothing was checked on chain (reference only)`)
  return { metrics, series, notes }
}
