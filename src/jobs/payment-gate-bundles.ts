// A bundle's tasks admitted together (compute-provider.ts: a TaskBundle the compute peer runs in
// one go) in the payment gate's credit rule: what they may bill past their largest price (at most
// the price of the bundle's cut, BundleAhead) counts as delivered for the bundle's next task and for
// every other task of the job, so bundles of one job admitted at once on several slots keep its
// unsigned work to the credit plus one task a slot (review20).
import type { BundleAhead } from './payment-gate-types.js'

/** Per job: what its bundles' admitted, not finished tasks may bill past each bundle's largest price. */
export class BundleExtras {
  private readonly byJob = new Map<string, bigint>()

  /** A bundle's task admitted (`units` > 0) or finished (< 0): its BundleAhead and the job's extra follow. */
  tally (key: string, own: BundleAhead, units: bigint): void {
    const before = extraOf(own)
    own.open += units
    if (units > own.top) own.top = units
    if (own.open <= 0n) { own.open = 0n; own.top = 0n }
    const next = (this.byJob.get(key) ?? 0n) + extraOf(own) - before
    if (next > 0n) this.byJob.set(key, next); else this.byJob.delete(key)
  }

  /**
   * What counts as delivered, beyond the ledger, in the rule of a task of job `key` priced
   * `nextTask`: the job's bundles' extra, with this task's own bundle's (`ahead`) as it would be
   * with this task admitted too.
   */
  counted (key: string, ahead: BundleAhead | undefined, nextTask: bigint): bigint {
    const extras = this.byJob.get(key) ?? 0n
    if (ahead === undefined || ahead.open === 0n) return extras
    return extras - extraOf(ahead) + extraOf({ ...ahead, open: ahead.open + nextTask, top: nextTask > ahead.top ? nextTask : ahead.top })
  }
}

/** What a bundle's admitted tasks may bill past their largest price (BundleAhead). */
function extraOf (a: BundleAhead): bigint {
  const past = a.open > a.top ? a.open - a.top : 0n
  return a.cap !== undefined && a.cap < past ? a.cap : past
}
