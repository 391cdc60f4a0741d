// Sending one copy of a task: the Task message built from the manifest and the copy, the code
// inline or by hash as the job's code cache (core/scheduler/code-cache.ts) says, and the resend
// with the code when the provider answers CODE_MISSING.
import { dbc } from '../wire/gen/wire.js'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { taskInputSpec, type CodeCache, type JobCommand, type Manifest } from '../core/scheduler/index.js'
import { readTaskInput } from './task-input.js'
import { resultCode, type JobTransport } from './transport.js'

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
export async function sendCopy (s: CopySender, c: RunCommand, signal: AbortSignal): Promise<dbc.task.v1.ITaskResult> {
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
    memoryLimitMib: s.m.resources.memoryMib
  }
  const withCode = s.cache.sendCode(c.provider)
  let res = await s.transport.runTask(c.provider, { ...task, code: withCode ? s.code : undefined }, { signal })
  // the provider lost the module (restart, eviction): the same copy goes again, with it
  if (s.cache.handleResult(c.provider, withCode, res.ok === true, resultCode(res)) === 'resend') {
    res = await s.transport.runTask(c.provider, { ...task, code: s.code }, { signal })
    s.cache.handleResult(c.provider, true, res.ok === true)
  }
  return res
}
