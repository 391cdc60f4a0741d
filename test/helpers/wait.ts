// Condition-based waits for tests on a loaded 2-core box: poll until the condition holds, give up
// only after a generous limit, and say what was awaited (and the last error seen) when it does.
// One copy here instead of a waitFor per test file.

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export interface WaitOptions {
  /** give up after this long (default 120 s) */
  ms?: number
  /** time between two polls (default 200 ms) */
  everyMs?: number
}

const opts = (o: number | WaitOptions | undefined): Required<WaitOptions> => {
  const w = typeof o === 'number' ? { ms: o } : (o ?? {})
  return { ms: w.ms ?? 120_000, everyMs: w.everyMs ?? 200 }
}

/**
 * Polls `get` until it returns something other than undefined, and returns that. A poll that
 * throws counts as "not yet" (a daemon still starting, a request timed out); the last error is
 * in the timeout's message.
 */
export async function waitFor<T> (what: string, get: () => T | undefined | Promise<T | undefined>, o?: number | WaitOptions): Promise<T> {
  const { ms, everyMs } = opts(o)
  const end = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await get()
      if (v !== undefined) return v
    } catch (err) { last = err }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last !== undefined ? `: ${(last as Error).message}` : ''}`)
    await sleep(everyMs)
  }
}

/** Polls `cond` until it holds (a throw counts as not yet); as waitFor, for yes/no conditions. */
export async function waitUntil (what: string, cond: () => boolean | Promise<boolean>, o?: number | WaitOptions): Promise<void> {
  await waitFor(what, async () => (await cond()) ? true : undefined, o)
}
