// Sending one copy of a task: the Task message built from the manifest and the copy, the code
// inline or by hash as the job's code cache (core/scheduler/code-cache.ts) says, and the resend
// with the code when the provider answers CODE_MISSING, and the resend on the same lease when the
// provider did not run it yet (NOT_RUN_CODES: its slots busy, the payer's vouchers behind).
import { dbc } from '../wire/gen/wire.js'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { taskInputSpec, type CodeCache, type JobCommand, type Manifest } from '../core/scheduler/index.js'
import { readTaskInput } from './task-input.js'
import { resultCode, type JobTransport } from './transport.js'
import { NOT_RUN_CODES } from '../core/scheduler/ports.js'
import { MAX_SIGNED_RECEIPT_BYTES } from '../core/settlement/receipt.js'
import { toHex } from '../core/identity/index.js'
import { PRICING_VERSION } from '../core/compute/pricing.js'

const enc = new TextEncoder()
type RunCommand = Extract<JobCommand, { type: 'run' }>

export interface CopySender {
  m: Manifest
  jobId: string
  jobIdBytes: Uint8Array
  codeHash: Uint8Array
  code: Uint8Array
  cache: CodeCache
  transport: JobTransport
  leaseIds: ReadonlyMap<string, Uint8Array>
  fileSize?: number
  baseDir?: string
  /** Sends the provider's due voucher now (a PAYER_BEHIND answer); resolves when it went out. */
  payNow?: (provider: string) => Promise<void>
  /** Copies that left in TaskBundle frames and those frames (the job summary's `bundles`). */
  bundles?: BundleTally
}

/** `frames` adds 1/n per copy of a frame of n tasks: a whole frame once all its copies are counted. */
export interface BundleTally { copies: number, frames: number }

/** The job summary's `bundles`, when any copy left in a bundle. */
export function bundlesSummary (t: BundleTally | undefined): { copies: number, frames: number } | undefined {
  return t === undefined || t.copies === 0 ? undefined : { copies: t.copies, frames: Math.max(1, Math.round(t.frames)) }
}

/** How often a copy the provider did not run yet (NOT_RUN_CODES, src/core/scheduler/ports.ts) goes again on the same lease. */
export const NOT_RUN_RETRIES = 8
/** The first pause before a resend (doubling, at most NOT_RUN_MAX_PAUSE_MS). */
export const NOT_RUN_PAUSE_MS = 25
export const NOT_RUN_MAX_PAUSE_MS = 1000

const pause = async (ms: number, signal: AbortSignal): Promise<void> => {
  signal.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(t); reject(signal.reason) }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** A job's input file up to this size is read once and sliced per task (an open, read and close per copy cost ~7% of a submitter sending tiny tasks). */
export const INPUT_CACHE_BYTES = 8 * 1024 * 1024
const wholeFiles = new WeakMap<CopySender, Promise<Uint8Array>>()

async function inputOf (s: CopySender, index: number): Promise<Uint8Array> {
  const spec = taskInputSpec(s.m, index, s.fileSize)
  if (spec.kind !== 'file-range' || s.fileSize === undefined || s.fileSize > INPUT_CACHE_BYTES) return await readTaskInput(s.m, index, s.fileSize, s.baseDir)
  let whole = wholeFiles.get(s)
  if (whole === undefined) {
    whole = readFile(resolve(s.baseDir ?? '.', spec.path)).then(b => new Uint8Array(b))
    wholeFiles.set(s, whole)
  }
  const all = await whole
  // a file that changed size since the job started is read as the task asks
  if (all.length !== s.fileSize) return await readTaskInput(s.m, index, s.fileSize, s.baseDir)
  return all.slice(spec.offset, spec.offset + spec.length)
}

/** The task id a copy's receipt must name. */
export const taskIdOf = (jobId: string, index: number, attempt: number): Uint8Array => enc.encode(`${jobId}:${index}:${attempt}`)

/** Sends copy `c` and waits for its result; throws when the provider is unreachable. */
export async function sendCopy (s: CopySender, c: RunCommand, signal: AbortSignal, onAdmission?: (admitted: boolean) => void): Promise<dbc.task.v1.ITaskResult> {
  const task: dbc.task.v1.ITask = {
    taskId: taskIdOf(s.jobId, c.index, c.attempt),
    jobId: s.jobIdBytes,
    leaseId: s.leaseIds.get(c.leaseId),
    index: c.index,
    attempt: c.attempt,
    executor: s.m.executor,
    codeHash: s.codeHash,
    entry: s.m.entry,
    input: await inputOf(s, c.index),
    deadlineMs: s.m.task.timeoutMs,
    memoryLimitMib: s.m.resources.memoryMib,
    pricingVersion: PRICING_VERSION,
    // this submitter checks batch-signed receipts (verifyReceipt): a lease stream may sign several at once
    batchReceipts: true
  }
  // a lease that holds bundles (tiny tasks, a provider that runs them): the copies sent to it in one
  // turn may leave as one TaskBundle frame (src/net/lease-task-channel.ts)
  const tally = s.bundles
  const opts = { signal, onAdmission, ...(c.bundle !== undefined && c.bundle > 1 ? { bundle: c.bundle } : {}), ...(tally !== undefined ? { onSent: (n: number) => { if (n > 1) { tally.copies++; tally.frames += 1 / n } } } : {}) }
  const once = async (): Promise<dbc.task.v1.ITaskResult> => {
    const withCode = s.cache.sendCode(c.provider)
    let res = await s.transport.runTask(c.provider, { ...task, code: withCode ? s.code : undefined }, opts)
    // the provider lost the module (restart, eviction): the same copy goes again, with it
    if (s.cache.handleResult(c.provider, withCode, res.ok === true, resultCode(res)) === 'resend') {
      res = await s.transport.runTask(c.provider, { ...task, code: s.code }, opts)
      s.cache.handleResult(c.provider, true, res.ok === true)
    }
    return res
  }
  let res = await once()
  const giveUpAt = performance.now() + Math.max(NOT_RUN_PAUSE_MS, s.m.task.timeoutMs / 4)
  for (let tries = 0; res.ok !== true && tries < NOT_RUN_RETRIES; tries++) {
    const code = resultCode(res) ?? ''
    if (!NOT_RUN_CODES.has(code)) break
    const wait = Math.min(NOT_RUN_MAX_PAUSE_MS, NOT_RUN_PAUSE_MS * 2 ** tries)
    if (performance.now() + wait > giveUpAt) break
    // the provider's credit ran out before ours said so: the voucher goes now, then the copy again
    if (code === 'PAYER_BEHIND') await s.payNow?.(c.provider)
    await pause(wait, signal)
    res = await once()
  }
  return res
}

/** What a copy's reply carries: its output and that output's hash, the receipt kept, the hash the provider claimed. */
export function replyOf (res: dbc.task.v1.ITaskResult): { output?: Uint8Array, hash?: string, receipt?: Uint8Array, claimedHash?: string } {
  const output = res.ok === true ? res.output ?? new Uint8Array() : undefined
  const hash = output === undefined ? undefined : createHash('sha256').update(output).digest('hex')
  // a receipt past MAX_SIGNED_RECEIPT_BYTES counts as none: nothing of it is kept or billed
  const encoded = res.receipt == null ? undefined : dbc.receipt.v1.SignedReceipt.encode(res.receipt).finish()
  const receipt = encoded !== undefined && encoded.length <= MAX_SIGNED_RECEIPT_BYTES ? encoded : undefined
  const claimedHash = res.outputHash != null && res.outputHash.length > 0 ? toHex(res.outputHash) : undefined
  return { output, hash, receipt, claimedHash }
}
