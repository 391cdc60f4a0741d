// The payment crash test at full size: payer and two providers as OS processes on one anvil,
// 20 kill -9s in all at random moments and at the flow's fault points (payer: after signing,
// after sending; provider: after writing its redeem tx down, after broadcasting it), twice with
// different seeds; every amount paid exactly once (test/payment/redeem-crash-run.ts).
import { test } from 'uvu'
import { runPaymentCrash } from '../payment/redeem-crash-run.js'

for (let round = 1; round <= 2; round++) {
  test(`round ${round}: 20 kills of payer and providers: every amount paid exactly once`, async () => {
    const seed = Number(process.env.CRASH_SEED ?? (Date.now() + round * 7919) % 100_000)
    const r = await runPaymentCrash({ kills: 20, seed, steps: 60 })
    const modes = new Map<string, number>()
    for (const k of r.kills) modes.set(`${k.victim}:${k.mode}`, (modes.get(`${k.victim}:${k.mode}`) ?? 0) + 1)
    console.log(`seed ${seed}: ${r.kills.length} kills in ${r.seconds.toFixed(1)} s, ${r.redeemTxs} redeem txs; ${[...modes].map(([k, n]) => `${k} x${n}`).join(', ')}`)
  })
}

test.run()
