// Which providers hold the job's code (sans-IO): the code goes inline with a provider's first
// task, later tasks name it by hash; a provider that lost it (restart, eviction) answers
// CODE_MISSING and the task is sent again at once with the code, not counted as a failure.

export type CodeVerdict = 'resend' | undefined

export class CodeCache {
  private readonly known = new Set<string>()

  /** Whether a task to `provider` carries the code inline. */
  sendCode (provider: string): boolean { return !this.known.has(provider) }

  /**
   * A task's answer. `sentCode`: it carried the code; `errorCode`: the typed code of a failed
   * answer. Returns 'resend' when the same task should go again, now with the code.
   */
  handleResult (provider: string, sentCode: boolean, ok: boolean, errorCode?: string): CodeVerdict {
    if (ok) { this.known.add(provider); return undefined }
    if (errorCode !== 'CODE_MISSING') return undefined
    this.known.delete(provider)
    return sentCode ? undefined : 'resend'
  }

  forget (provider: string): void { this.known.delete(provider) }
}
