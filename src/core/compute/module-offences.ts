// How often a provider charges the sender of a task whose module it refused at validation. Our submitter
// refuses such a module before it ships (src/jobs/manifest-file.ts checkJobCode, the same validator), so
// only a hostile or foreign client sends one. Pure: counts in, a decision out.
//
// The choice: the first refusal of a (sender, module) is one offence, and then one more for every
// `every` further tasks with the same module. With the defaults (50, and 20 points per offence against a
// ban at -100 that decays with a 10-minute half-life) a one-off job of up to 200 tasks costs at most four
// offences and is never banned, while a 1000-task hostile job is banned within its first ~300 tasks (five
// or six offences, with the decay), and so is a sender trying six different bad modules. Charging every
// task would ban a foreign client's one honest mistake after six tasks; charging once per module would
// never ban a 1000-task flood.

/** Further refusals of the same (sender, module) per extra charge. */
export const MODULE_REFUSALS_PER_CHARGE = 50
/** Pairs remembered (oldest forgotten first; forgetting only makes the next refusal charged again). */
export const MAX_MODULE_OFFENDERS = 4096

export class ModuleOffences {
  private readonly refusals = new Map<string, number>()

  constructor (private readonly every = MODULE_REFUSALS_PER_CHARGE, private readonly maxPairs = MAX_MODULE_OFFENDERS) {}

  get size (): number { return this.refusals.size }

  /** Counts one refusal of `module` (its hash) sent by `sender`; true when this one is charged. */
  refused (sender: string, module: string): boolean {
    const key = `${sender}/${module}`
    const n = (this.refusals.get(key) ?? 0) + 1
    this.refusals.delete(key)
    this.refusals.set(key, n)
    if (this.refusals.size > this.maxPairs) this.refusals.delete(this.refusals.keys().next().value as string)
    return (n - 1) % this.every === 0
  }
}
