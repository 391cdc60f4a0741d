// Who may do what with a job. A job is signed by its owner's Ed25519 key; a session token
// that the owner signs delegates some actions to another key (like the seed system's
// session_id); providers accept a task only from the holder of the lease it runs under.
// Pure: signatures are deterministic, `now` comes in.
import { sha256 } from '@noble/hashes/sha2.js'
import { dbc } from '../../wire/gen/wire.js'
import { bytesEqual, signBytes, toHex, verifyByPeerId } from '../identity/index.js'

const enc = new TextEncoder()

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
function f64 (n: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setFloat64(0, n)
  return b
}
function str (s: string): Uint8Array {
  const b = enc.encode(s)
  return concat(f64(b.length), b)
}

export interface SignedJob {
  /** hex sha256 of owner, manifest hash, creation time and nonce. */
  jobId: string
  owner: Uint8Array
  manifestHash: Uint8Array
  createdAt: number
  nonce: Uint8Array
  signature: Uint8Array
}

export function manifestHash (canonicalManifest: Uint8Array): Uint8Array {
  return sha256(canonicalManifest)
}

function jobBody (owner: Uint8Array, mh: Uint8Array, createdAt: number, nonce: Uint8Array): Uint8Array {
  return concat(enc.encode('dbc-job-v1\0'), str(toHex(owner)), mh, f64(createdAt), nonce)
}

export function signJob (ownerSecret: Uint8Array, owner: Uint8Array, canonicalManifest: Uint8Array, createdAt: number, nonce: Uint8Array): SignedJob {
  const mh = manifestHash(canonicalManifest)
  const body = jobBody(owner, mh, createdAt, nonce)
  return { jobId: toHex(sha256(body)), owner, manifestHash: mh, createdAt, nonce, signature: signBytes(ownerSecret, body) }
}

/** True when the job id matches its fields, the owner signed it, and (if given) the manifest matches. */
export function verifyJob (job: SignedJob, canonicalManifest?: Uint8Array): boolean {
  if (canonicalManifest !== undefined && !bytesEqual(manifestHash(canonicalManifest), job.manifestHash)) return false
  const body = jobBody(job.owner, job.manifestHash, job.createdAt, job.nonce)
  return toHex(sha256(body)) === job.jobId && verifyByPeerId(job.owner, body, job.signature)
}

export type JobAction = 'cancel' | 'results' | 'status' | 'explain' | 'submit'

export interface SessionToken {
  owner: Uint8Array
  /** Peer id bytes of the delegated key. */
  session: Uint8Array
  expiresAt: number
  /** Actions allowed; '*' for all. */
  scope: Array<JobAction | '*'>
  signature: Uint8Array
}

function sessionBody (t: Omit<SessionToken, 'signature'>): Uint8Array {
  return concat(enc.encode('dbc-session-v1\0'), str(toHex(t.owner)), str(toHex(t.session)), f64(t.expiresAt), str([...t.scope].sort().join(',')))
}

export function signSessionToken (ownerSecret: Uint8Array, t: Omit<SessionToken, 'signature'>): SessionToken {
  return { ...t, signature: signBytes(ownerSecret, sessionBody(t)) }
}

export interface JobActionRequest {
  jobId: string
  action: JobAction
  at: number
  signer: Uint8Array
  signature: Uint8Array
  session?: SessionToken
}

function actionBody (jobId: string, action: JobAction, at: number): Uint8Array {
  return concat(enc.encode('dbc-job-action-v1\0'), str(jobId), str(action), f64(at))
}

export function signJobAction (secret: Uint8Array, signer: Uint8Array, jobId: string, action: JobAction, at: number, session?: SessionToken): JobActionRequest {
  return { jobId, action, at, signer, signature: signBytes(secret, actionBody(jobId, action, at)), session }
}

export type Authorization = { ok: true, via: 'owner' | 'session' } | { ok: false, reason: string }

/** Only the owner, or a live session the owner signed with this action in scope. */
export function authorizeJobAction (job: Pick<SignedJob, 'jobId' | 'owner'>, req: JobActionRequest, now: number, maxSkewMs = 300_000): Authorization {
  if (req.jobId !== job.jobId) return { ok: false, reason: 'the request names another job' }
  if (Math.abs(now - req.at) > maxSkewMs) return { ok: false, reason: 'the request is too old or from the future (check the clock)' }
  if (!verifyByPeerId(req.signer, actionBody(req.jobId, req.action, req.at), req.signature)) return { ok: false, reason: 'bad signature on the request' }
  if (bytesEqual(req.signer, job.owner)) return { ok: true, via: 'owner' }
  const s = req.session
  if (s === undefined) return { ok: false, reason: 'only the job owner or a session the owner signed may do this' }
  if (!bytesEqual(s.owner, job.owner)) return { ok: false, reason: 'the session token belongs to another owner' }
  if (!bytesEqual(s.session, req.signer)) return { ok: false, reason: 'the session token was issued to another key' }
  if (s.expiresAt <= now) return { ok: false, reason: 'the session token expired' }
  if (!s.scope.includes('*') && !s.scope.includes(req.action)) return { ok: false, reason: `the session token does not allow "${req.action}"` }
  if (!verifyByPeerId(s.owner, sessionBody(s), s.signature)) return { ok: false, reason: 'bad owner signature on the session token' }
  return { ok: true, via: 'session' }
}

// ---- leases and tasks: what a provider checks -----------------------------------------

const LEASE_DOMAIN = enc.encode('dbc.task.v1.Lease\0')
const TASK_DOMAIN = enc.encode('dbc.task.v1.Task\0')

export function leaseSigningBytes (lease: dbc.task.v1.ILease): Uint8Array {
  return concat(LEASE_DOMAIN, dbc.task.v1.Lease.encode({ ...lease, signature: undefined }).finish())
}
export function taskSigningBytes (task: dbc.task.v1.ITask): Uint8Array {
  // pricing_version and batch_receipts are not signed: an older provider drops them before it checks
  return concat(TASK_DOMAIN, dbc.task.v1.Task.encode({ ...task, ownerSignature: undefined, pricingVersion: undefined, batchReceipts: undefined }).finish())
}

/** Signs with the secret key, or with a signer function (e.g. a faster native one). */
export type SecretOrSigner = Uint8Array | ((msg: Uint8Array) => Uint8Array)
const signWith = (k: SecretOrSigner, msg: Uint8Array): Uint8Array => k instanceof Uint8Array ? signBytes(k, msg) : k(msg)
/** Verifies a signature by the key inside a peer id (core's pure one by default). */
export type PeerIdVerifier = (peerId: Uint8Array, msg: Uint8Array, signature: Uint8Array) => boolean

export function signLease (holder: SecretOrSigner, lease: dbc.task.v1.ILease): dbc.task.v1.ILease {
  return { ...lease, signature: signWith(holder, leaseSigningBytes(lease)) }
}
export function signTask (holder: SecretOrSigner, task: dbc.task.v1.ITask): dbc.task.v1.ITask {
  return { ...task, ownerSignature: signWith(holder, taskSigningBytes(task)) }
}

export type TaskAdmission = { ok: true } | { ok: false, reason: string }

/**
 * Why a lease was refused, and what the refusal costs its sender: 'reject' where no honest
 * submitter sends such a lease (charge it), 'ignore' where one may (a slow or skewed one).
 */
export type LeaseRefusal = {
  ok: false
  reason: string
  code: 'LEASE_BAD_SIGNATURE' | 'LEASE_WRONG_PROVIDER' | 'LEASE_NOT_HOLDER' | 'LEASE_EXPIRED' | 'LEASE_UNKNOWN_OFFER' | 'LEASE_OFFER_USED' | 'LEASE_OFFER_MISMATCH' | 'LEASE_OFFER_EXPIRED'
  action: 'reject' | 'ignore'
}
export type LeaseAdmission = { ok: true } | LeaseRefusal

/** What a provider remembers of an offer it signed and sent (src/jobs/lease-book.ts keeps them). */
export interface IssuedOffer {
  offerId: Uint8Array
  jobId: Uint8Array
  /** The peer that asked for it (the stream's authenticated sender): only it may lease it. */
  requester: Uint8Array
  expiresAt: number
  /** Input bytes the lease request announced (its largest task input): the lease's task frame limit. */
  inputBytes?: number
  /** Result bytes the lease request announced (the job's largest task output); absent: not announced. */
  resultBytes?: number
  /** The offer's prices (tokens per hour): what a task under its lease may be billed, no more. */
  prices?: { priceGpuHour: number, priceCpuHour: number }
  /** The slot one task takes (from the request): GPUs and cores, for one task's price. */
  slot?: { gpus: number, cores: number }
  /** Tasks the offer lets run at once under its lease. */
  slots?: number
  /** The offer's bundle_max: the most tasks of one TaskBundle its lease stream takes (absent or < 2: none). */
  bundleMax?: number
}

const EMPTY = new Uint8Array()
const refuse = (code: LeaseRefusal['code'], reason: string, action: LeaseRefusal['action'] = 'reject'): LeaseRefusal => ({ ok: false, code, reason, action })

/**
 * Provider side, once per lease: the lease is signed by its holder, was granted by this
 * provider (`self`), comes from the holder (`sender`, authenticated by the transport), is
 * live, and names an offer this provider issued to that holder for that job, still open
 * (`issuedOffer`: what the provider's own book holds under `lease.offerId`, undefined when
 * nothing). A lease carries no slots or prices: it runs on its offer's, and an offer backs
 * one lease (the book forgets it once leased; `offerUsed` says it was leased already). Keep the
 * lease after this passes; check each task with `checkTaskUnderLease`.
 */
export function checkLease (p: { lease: dbc.task.v1.ILease, sender: Uint8Array, self?: Uint8Array, now: number, verify?: PeerIdVerifier, issuedOffer: IssuedOffer | undefined, offerUsed?: boolean }): LeaseAdmission {
  const { lease, sender, now } = p
  const holder = lease.holder ?? EMPTY
  if (!(p.verify ?? verifyByPeerId)(holder, leaseSigningBytes(lease), lease.signature ?? EMPTY)) return refuse('LEASE_BAD_SIGNATURE', 'the lease is not signed by its holder')
  if (p.self !== undefined && !bytesEqual(lease.provider ?? EMPTY, p.self)) return refuse('LEASE_WRONG_PROVIDER', 'the lease was granted by another provider')
  if (!bytesEqual(sender, holder)) return refuse('LEASE_NOT_HOLDER', 'the sender does not hold the lease')
  // the submitter sets the expiry; only a clock far off makes it past: not charged
  if ((lease.expiresAt ?? 0) <= now) return refuse('LEASE_EXPIRED', 'the lease expired', 'ignore')
  const o = p.issuedOffer
  // a second lease on one offer: an honest runner leases each offer once (charged)
  if (o === undefined && p.offerUsed === true) return refuse('LEASE_OFFER_USED', 'the offer backs a lease already (ask for a new offer)')
  // an offer this provider does not hold, on a lease its holder signed for us: honest runners see
  // this too (the provider restarted, or evicted the offer under a lease-request flood): not charged
  if (o === undefined || !bytesEqual(o.offerId, lease.offerId ?? EMPTY)) return refuse('LEASE_UNKNOWN_OFFER', 'the lease names no open offer of this provider (ask for an offer first)', 'ignore')
  if (!bytesEqual(o.jobId, lease.jobId ?? EMPTY)) return refuse('LEASE_OFFER_MISMATCH', 'the offer was made for another job')
  if (!bytesEqual(o.requester, holder)) return refuse('LEASE_OFFER_MISMATCH', 'the offer was made to another requester')
  // an honest submitter that placed slowly may lease an offer just past its expiry: not charged
  if (o.expiresAt <= now) return refuse('LEASE_OFFER_EXPIRED', 'the offer expired before the lease came (ask for a new offer)', 'ignore')
  return { ok: true }
}

/**
 * Provider side, per task (cheap): the task comes from the holder of a lease already
 * checked with `checkLease`, for the same lease and job, before the lease expires. A task
 * that carries an owner signature must carry a valid one (relayed tasks need it).
 */
export function checkTaskUnderLease (p: { task: dbc.task.v1.ITask, lease: dbc.task.v1.ILease, sender: Uint8Array, now: number, verify?: PeerIdVerifier }): TaskAdmission {
  const { task, lease, sender, now } = p
  const holder = lease.holder ?? EMPTY
  if (!bytesEqual(sender, holder)) return { ok: false, reason: 'only the lease holder may send tasks under this lease' }
  if ((lease.expiresAt ?? 0) <= now) return { ok: false, reason: 'the lease expired' }
  if (!bytesEqual(task.leaseId ?? EMPTY, lease.leaseId ?? EMPTY)) return { ok: false, reason: 'the task names another lease' }
  if (!bytesEqual(task.jobId ?? EMPTY, lease.jobId ?? EMPTY)) return { ok: false, reason: 'the task belongs to another job than the lease' }
  const sig = task.ownerSignature ?? EMPTY
  if (sig.length > 0 && !(p.verify ?? verifyByPeerId)(holder, taskSigningBytes(task), sig)) return { ok: false, reason: 'bad lease-holder signature on the task' }
  return { ok: true }
}

/** Both checks at once, for a provider that sees the lease with the task. */
export function checkTaskFromLeaseHolder (p: { task: dbc.task.v1.ITask, lease: dbc.task.v1.ILease, sender: Uint8Array, self?: Uint8Array, now: number, verify?: PeerIdVerifier, issuedOffer: IssuedOffer | undefined }): TaskAdmission {
  const l = checkLease(p)
  return l.ok ? checkTaskUnderLease(p) : l
}
