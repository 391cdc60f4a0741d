// The job manifest: what to run, on which inputs, on what hardware, how to verify it, and
// what it may cost. Pure validation (zod v4); reading the file is src/jobs/manifest-file.ts.
// Errors name the field path and the problem, e.g. `inputs.range.to: must be >= from`.
import { z } from 'zod'
import { DEFAULT_SPOT_CHECKS, type SpotCheckPolicy } from './spot-check.js'

const positiveInt = z.number().int().positive()
const nonNegative = z.number().nonnegative()

const codeSchema = z.strictObject({
  /** Path of a wasm module (resolved against the manifest's folder by the runtime). */
  wasm: z.string().min(1).optional(),
  /** A process command: program and arguments. */
  command: z.array(z.string().min(1)).min(1).optional(),
  /** A docker image reference. */
  image: z.string().min(1).optional()
}).superRefine((c, ctx) => {
  const given = [c.wasm, c.command, c.image].filter(v => v !== undefined).length
  if (given !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of wasm, command or image' })
})

const rangeSchema = z.strictObject({
  from: z.number().finite(),
  /** Inclusive. */
  to: z.number().finite(),
  step: z.number().finite().positive().default(1)
}).superRefine((r, ctx) => {
  if (r.to < r.from) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be >= from' })
  else if (Math.floor((r.to - r.from) / r.step) + 1 > MAX_TASKS) ctx.addIssue({ code: 'custom', path: ['step'], message: `the range makes more than ${MAX_TASKS} tasks` })
})

const filesSchema = z.strictObject({
  /** One file split into `partitions` byte ranges, or `chunkBytes` each. */
  path: z.string().min(1).optional(),
  partitions: positiveInt.max(1_000_000).optional(),
  chunkBytes: positiveInt.optional(),
  /** Or one task per file. */
  paths: z.array(z.string().min(1)).min(1).optional()
}).superRefine((f, ctx) => {
  if (f.paths !== undefined && f.path !== undefined) ctx.addIssue({ code: 'custom', message: 'give either path (with partitions or chunkBytes) or paths, not both' })
  else if (f.paths === undefined && f.path === undefined) ctx.addIssue({ code: 'custom', message: 'give path (with partitions or chunkBytes) or paths' })
  else if (f.path !== undefined && (f.partitions === undefined) === (f.chunkBytes === undefined)) ctx.addIssue({ code: 'custom', path: ['partitions'], message: 'give exactly one of partitions or chunkBytes with path' })
})

export const MAX_TASKS = 1_000_000

const inputsSchema = z.strictObject({
  list: z.array(z.unknown()).min(1).max(MAX_TASKS).optional(),
  range: rangeSchema.optional(),
  files: filesSchema.optional()
}).superRefine((i, ctx) => {
  const given = [i.list, i.range, i.files].filter(v => v !== undefined).length
  if (given !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of list, range or files' })
})

const resourcesSchema = z.strictObject({
  gpu: z.strictObject({
    model: z.string().min(1).optional(),
    count: positiveInt.max(64).default(1),
    memoryMib: positiveInt.optional()
  }).optional(),
  cores: positiveInt.max(1024).default(1),
  memoryMib: positiveInt.default(256),
  /** Container tasks: ask for a network (providers give none unless their config allows it). */
  network: z.boolean().default(false)
})

const verificationSchema = z.strictObject({
  /**
   * 'spot-check' (the default, also with no verification section): tasks of providers with
   * little history get a second copy on another provider, an established provider's a
   * `spotCheckRate` share; a provider caught with a wrong result loses every result of the job
   * and its pay for them. 'off': the explicit opt-out, only `redundancy`/`quorum` as given.
   */
  mode: z.enum(['spot-check', 'off']).default('spot-check'),
  redundancy: positiveInt.max(15).default(1),
  quorum: positiveInt.max(15).optional(),
  /** Trusted providers (long clean record) get fewer copies, with random spot checks. */
  adaptive: z.boolean().default(false),
  /** Upper bound on copies when copies disagree (extra copies are added until quorum). */
  maxCopies: positiveInt.max(31).optional(),
  /** Share of an established provider's tasks still re-run on a second provider. */
  spotCheckRate: z.number().min(0).max(1).default(DEFAULT_SPOT_CHECKS.rate),
  /** Results in a row confirmed by another provider before a provider is only spot-checked. */
  trustAfter: positiveInt.max(10_000).default(DEFAULT_SPOT_CHECKS.trustAfter),
  /**
   * Lease providers whose payout address has no stake on chain, or too little for the GPUs they
   * offer (on a paid node they are refused NOT_STAKED / STAKE_TOO_LOW by default: two cheap
   * identities could hold both copies of a task and agree on a wrong result).
   */
  allowUnstaked: z.boolean().optional()
}).superRefine((v, ctx) => {
  const quorum = v.quorum ?? Math.floor(v.redundancy / 2) + 1
  if (quorum > v.redundancy) ctx.addIssue({ code: 'custom', path: ['quorum'], message: `must be <= redundancy (${v.redundancy})` })
  if (v.maxCopies !== undefined && v.maxCopies < v.redundancy) ctx.addIssue({ code: 'custom', path: ['maxCopies'], message: `must be >= redundancy (${v.redundancy})` })
})

const budgetSchema = z.strictObject({
  /** Highest price per task-hour (GPU + CPU parts together) the job accepts. */
  maxPricePerHour: nonNegative.optional(),
  /** Highest total spend over all tasks and copies. */
  total: nonNegative.optional()
})

const locationSchema = z.strictObject({
  lat: z.number().min(-90).max(90).optional(),
  lon: z.number().min(-180).max(180).optional(),
  city: z.string().min(1).optional(),
  maxDistanceKm: z.number().positive().optional()
}).superRefine((l, ctx) => {
  if ((l.lat === undefined) !== (l.lon === undefined)) ctx.addIssue({ code: 'custom', path: [l.lat === undefined ? 'lat' : 'lon'], message: 'lat and lon go together' })
  if (l.lat === undefined && l.city === undefined) ctx.addIssue({ code: 'custom', message: 'give lat/lon or city' })
})

/** The largest task result a job may announce (= TASK_MAX_FRAME, src/net/task-protocol.ts) and the default. */
export const MAX_RESULT_BYTES = 16 * 1024 * 1024

const taskSchema = z.strictObject({
  /** Wall-time limit of one task copy on the provider. */
  timeoutMs: positiveInt.default(60_000),
  /** What a task takes on a reference machine (perf score 1); drives placement. */
  expectedMs: z.number().positive().default(1_000),
  /** Bytes of input per task (for transfer-time prediction; derived for files when omitted). */
  inputBytes: nonNegative.optional(),
  /**
   * The largest output one task returns, bytes (default and most: MAX_RESULT_BYTES, 16 MiB, the task
   * protocol's frame limit). Announced in the lease request: a provider does not send a larger result
   * (the copy fails RESULT_TOO_LARGE), and this node reads results, and admits copies on WebRTC
   * connections, against it: a smaller bound lets more WebRTC copies run at once.
   */
  maxResultBytes: positiveInt.max(MAX_RESULT_BYTES).optional(),
  /** Copies of one task that may fail before the task fails. */
  maxAttempts: positiveInt.max(100).default(5),
  /**
   * Seconds a task that no provider can take now (all busy) waits for a free slot before it
   * fails (default 600; 0: fail at once). The job's deadline still applies.
   */
  waitS: z.number().int().nonnegative().max(7 * 24 * 3600).optional(),
  /** How a list/range value becomes task input bytes: JSON text, float64 array, or UTF-8 text. */
  inputEncoding: z.enum(['json', 'f64', 'utf8']).default('json')
})

export const manifestSchema = z.strictObject({
  name: z.string().min(1).max(200).default('job'),
  executor: z.enum(['wasm', 'process', 'docker']),
  code: codeSchema,
  entry: z.string().min(1).default('main'),
  inputs: inputsSchema,
  resources: resourcesSchema.default({ cores: 1, memoryMib: 256, network: false }),
  verification: verificationSchema.prefault({}),
  budget: budgetSchema.default({}),
  /** Seconds after submission, or an ISO-8601 time. */
  deadline: z.union([z.number().positive(), z.iso.datetime({ offset: true })]).optional(),
  location: locationSchema.optional(),
  /**
   * How offers are chosen: 'cost-model' (default: predicted run + transfer time, price and
   * reputation; near, fast, cheap providers first) or 'random' (uniformly among the offers that
   * pass the price, budget, distance and deadline filters: the baseline to compare against).
   */
  placement: z.enum(['cost-model', 'random']).default('cost-model'),
  /**
   * How messages reach providers: 'auto' (a direct connection, else a relayed one, else the
   * overlay), 'direct' (connections only, never the overlay) or 'overlay' (privacy: sealed
   * envelopes through overlay relays only; no connection with the job's providers unless another
   * job of the node uses them). Unset: the node's config routing.mode. `dbc job submit --routing`
   * overrides it. src/net/routes.
   */
  routing: z.enum(['auto', 'direct', 'overlay']).optional(),
  task: taskSchema.default({ timeoutMs: 60_000, expectedMs: 1_000, maxAttempts: 5, inputEncoding: 'json' })
}).superRefine((m, ctx) => {
  const codeKind = m.code.wasm !== undefined ? 'wasm' : m.code.command !== undefined ? 'process' : 'docker'
  if (codeKind !== m.executor) ctx.addIssue({ code: 'custom', path: ['code'], message: `executor "${m.executor}" needs code.${m.executor === 'wasm' ? 'wasm' : m.executor === 'process' ? 'command' : 'image'}` })
  if (m.resources.network && m.executor !== 'docker') ctx.addIssue({ code: 'custom', path: ['resources', 'network'], message: 'only container tasks (executor "docker") can ask for a network' })
  if (m.task.inputEncoding === 'f64' && m.inputs.list !== undefined) f64ListIssues(m.inputs.list, ctx)
})

/** A value `inputEncoding: f64` can send: a number (or a numeric string) or a list of them. */
const isF64Value = (v: unknown): boolean => {
  const one = (x: unknown): boolean => typeof x === 'number' || (typeof x === 'string' && x.trim() !== '' && !Number.isNaN(Number(x)))
  return Array.isArray(v) ? v.every(one) : one(v)
}

/**
 * `inputEncoding: f64` turns each list value into float64s with Number(): a string or an object
 * became NaN and the job ran and paid for garbage. The first few such values are named.
 */
function f64ListIssues (list: readonly unknown[], ctx: z.RefinementCtx): void {
  let bad = 0
  for (let i = 0; i < list.length; i++) {
    if (isF64Value(list[i])) continue
    if (bad++ < 3) {
      const text = JSON.stringify(list[i]) ?? String(list[i])
      ctx.addIssue({ code: 'custom', path: ['inputs', 'list', i], message: `${text.length > 40 ? `${text.slice(0, 40)}...` : text} is not a number: task.inputEncoding f64 sends each input as float64 values (a number or a list of numbers; inputEncoding json or utf8 sends other values)` })
    }
  }
  if (bad > 3) ctx.addIssue({ code: 'custom', path: ['inputs', 'list'], message: `${bad - 3} more values are not numbers` })
}

export type Manifest = z.output<typeof manifestSchema>
export type ManifestInput = z.input<typeof manifestSchema>

export interface ManifestIssue { path: string, message: string }
export type ManifestResult = { ok: true, manifest: Manifest } | { ok: false, issues: ManifestIssue[] }

/** Validates a parsed manifest (from YAML or JSON). Never throws. */
export function validateManifest (raw: unknown): ManifestResult {
  const r = manifestSchema.safeParse(raw)
  if (r.success) return { ok: true, manifest: r.data }
  const issues: ManifestIssue[] = []
  for (const issue of r.error.issues) {
    const base = issue.path.map(String).join('.')
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(issue.path)
      for (const key of issue.keys) {
        // a suggestion for the first few only: the work stays small for any input
        const near = issues.length < 32 ? nearestKey(key, known) : undefined
        issues.push({ path: base === '' ? key : `${base}.${key}`, message: near === undefined ? 'unknown field' : `unknown field (did you mean ${near}?)` })
      }
    } else {
      issues.push({ path: base === '' ? '(manifest)' : base, message: issue.message })
    }
  }
  return { ok: false, issues }
}

/** The fields the manifest schema knows at a path (through optional and default wrappers); [] when none. */
function knownKeysAt (path: readonly PropertyKey[]): string[] {
  const unwrap = (t: any): any => {
    while (t?._zod?.def?.innerType !== undefined) t = t._zod.def.innerType
    return t
  }
  let t: any = unwrap(manifestSchema)
  for (const p of path) t = unwrap(t?.shape?.[p as string])
  return t?.shape !== undefined ? Object.keys(t.shape) : []
}

/** The known field a typo most likely meant: at most 2 edits away (1 for names of 4 letters or fewer), else undefined. */
export function nearestKey (key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase()
  let best: string | undefined
  let bestD = k.length <= 4 ? 2 : 3
  for (const cand of known) {
    const d = editDistance(k, cand.toLowerCase())
    if (d < bestD) { best = cand; bestD = d }
  }
  return best
}

function editDistance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 99
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = cur
  }
  return prev[b.length]
}

/** `path: problem` lines, one per issue. */
export function formatManifestIssues (issues: ManifestIssue[]): string {
  return issues.map(i => `${i.path}: ${i.message}`).join('\n')
}

/** The quorum the policy implies (a majority of the redundant copies unless given). */
export function quorumOf (m: Manifest): number {
  return m.verification.quorum ?? Math.floor(m.verification.redundancy / 2) + 1
}

/** The default checks this manifest asks for; undefined when it opts out (`mode: off`). */
export function spotChecksOf (m: Manifest): SpotCheckPolicy | undefined {
  const v = m.verification
  return v.mode === 'off' ? undefined : { rate: v.spotCheckRate, trustAfter: v.trustAfter }
}

/** Absolute deadline (ms) for a job submitted at `submittedAt`, or undefined. */
export function deadlineAt (m: Manifest, submittedAt: number): number | undefined {
  if (m.deadline === undefined) return undefined
  if (typeof m.deadline === 'number') return submittedAt + m.deadline * 1000
  return Date.parse(m.deadline)
}

/** How long unplaceable tasks wait for busy providers (ms): `task.waitS`, or the default. */
export function placementWaitMs (m: Manifest, fallbackMs: number): number {
  return m.task.waitS !== undefined ? m.task.waitS * 1000 : fallbackMs
}

/** Price per task-hour of an offer for this manifest's resources. */
export function taskPricePerHour (m: Manifest, priceGpuHour: number, priceCpuHour: number): number {
  return (m.resources.gpu?.count ?? 0) * priceGpuHour + m.resources.cores * priceCpuHour
}
