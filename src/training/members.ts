// Who this node trains with, for the all-reduce frame limit: large frames (slices, model state)
// are accepted only from peers of a job this node coordinates or works in, and only as large as
// that job's model needs. Learned from the messages the node itself sends and accepts, so no
// remote peer can make itself a member: it must be invited by us (we coordinate), or named by
// the coordinator of a job we accepted, or asked by us for state. Bounded and expiring.
import type { TrainingMessage, TrainingMessageInput } from './transport.js'

/** A membership lapses this long after the last message of its job (a worker's idle timeout is 10 min). */
export const MEMBERSHIP_TTL_MS = 15 * 60_000
/** Peers and jobs remembered at most (least recently refreshed forgotten first). */
const MAX_PEERS = 4096
const MAX_JOBS = 256
/** Invitations received, remembered for their group size until we answer (a few at a time). */
const MAX_INVITES = 64
/**
 * A member's first slice can beat the RoundStart that names it by about a round's setup; this
 * long after accepting a job (or joining it), or after its last RoundStart, a refused large frame
 * is taken for such an early slice and not charged. Past it the job is idle, and is no excuse.
 */
export const EARLY_SLICE_WINDOW_MS = 2 * 60_000
/**
 * Members one RoundStart may grant large frames to: a spec's group is at most 64 peers. With the
 * group size known (from the invitation), twice it: the coordinator lets replacements and
 * stragglers join beside the invited group.
 */
export const MAX_ROUND_MEMBERS = 64
/** Slack beside a model's bytes: message fields, and a RoundStart naming every member. */
const FRAME_SLACK = 64 * 1024

/**
 * Largest frame a job with `params` parameters needs: the densest codec (top-k at fraction 1)
 * sends an index and a value, 8 bytes per parameter; a model state is 4 bytes per parameter.
 */
export function trainingFrameBytes (params: number): number {
  return 8 * Math.max(0, params) + FRAME_SLACK
}

interface Job {
  coordinator?: string
  bytes?: number
  invited: Set<string>
  coordinating: boolean
  /** Peers in the group, from the invitation we accepted (caps the members a RoundStart grants). */
  groupSize?: number
  /** When this node accepted (or joined) the job, and when the job's last RoundStart came. */
  workingSince?: number
  lastRoundAt?: number
  /** Last message of the job, either way: the job is forgotten MEMBERSHIP_TTL_MS after it. */
  touchedAt: number
}

export class TrainingMembers {
  private readonly peers = new Map<string, { bytes: number, until: number }>()
  private readonly jobs = new Map<string, Job>()
  private readonly invites = new Map<string, number>()

  constructor (private readonly maxFrame: number) {}

  /**
   * True while this node works in a job and a round may be starting: within
   * EARLY_SLICE_WINDOW_MS of accepting (or joining) it or of its last RoundStart. A member's
   * first slice can then arrive before the RoundStart that names it, so a refused large frame is
   * not held against its sender (it is still refused at its prefix, so it costs the node nothing).
   */
  worksInAJob (now: number): boolean {
    return this.earlySliceBytes(now) > 0
  }

  /** The largest frame a job this node works in (within the window) may send: 0 when none. */
  earlySliceBytes (now: number): number {
    let most = 0
    for (const [id, j] of this.jobs) {
      if (this.expired(now, id, j) || j.coordinator === undefined) continue
      const since = Math.max(j.workingSince ?? -Infinity, j.lastRoundAt ?? -Infinity)
      if (now - since <= EARLY_SLICE_WINDOW_MS) most = Math.max(most, this.bytesOf(j))
    }
    return most
  }

  /** The largest frame `peer` may send now (0: not a member of any job with this node). */
  limitOf (now: number, peer: string): number {
    const p = this.peers.get(peer)
    if (p === undefined || p.until < now) return 0
    return p.bytes
  }

  private allow (now: number, peer: string, bytes: number): void {
    const prev = this.peers.get(peer)
    this.peers.delete(peer)
    if (this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.keys().next().value as string)
    const keep = prev !== undefined && prev.until >= now ? prev.bytes : 0
    this.peers.set(peer, { bytes: Math.min(this.maxFrame, Math.max(keep, bytes)), until: now + MEMBERSHIP_TTL_MS })
  }

  private expired (now: number, jobId: string, j: Job): boolean {
    if (now - j.touchedAt <= MEMBERSHIP_TTL_MS) return false
    this.jobs.delete(jobId)
    return true
  }

  /** A job still live (touched within MEMBERSHIP_TTL_MS), not refreshed; undefined otherwise. */
  private peek (now: number, jobId: string): Job | undefined {
    const j = this.jobs.get(jobId)
    return j === undefined || this.expired(now, jobId, j) ? undefined : j
  }

  /** A job still live, refreshed (a message of the job went out, or came from who we expect). */
  private live (now: number, jobId: string): Job | undefined {
    const j = this.peek(now, jobId)
    if (j === undefined) return undefined
    this.jobs.delete(jobId) // re-inserted: Map order is least recently touched first
    this.jobs.set(jobId, j)
    j.touchedAt = now
    return j
  }

  private job (now: number, jobId: string): Job {
    let j = this.live(now, jobId)
    if (j === undefined) {
      if (this.jobs.size >= MAX_JOBS) this.jobs.delete(this.jobs.keys().next().value as string)
      j = { invited: new Set(), coordinating: false, touchedAt: now }
      this.jobs.set(jobId, j)
    }
    return j
  }

  /** Jobs remembered now (expired ones are dropped as they are met; tests read this). */
  get jobCount (): number { return this.jobs.size }

  private bytesOf (j: Job | undefined): number { return j?.bytes ?? this.maxFrame }

  /** A message this node sends to `to`. */
  onSend (now: number, to: string, msg: TrainingMessageInput): void {
    if (msg.invite != null) {
      const j = this.job(now, msg.invite.jobId ?? '')
      j.coordinating = true
      if (j.invited.size < 1024) j.invited.add(to)
    } else if (msg.roundStart != null) {
      const j = this.live(now, msg.roundStart.jobId ?? '')
      if (j?.coordinating === true) for (const m of msg.roundStart.members ?? []) if (j.invited.has(m) || m === to) this.allow(now, m, this.bytesOf(j))
    } else if (msg.inviteReply != null && msg.inviteReply.accepted === true) {
      // we accepted to work in this job: its coordinator may send us the model's frames
      const jobId = msg.inviteReply.jobId ?? ''
      const j = this.job(now, jobId)
      j.coordinator = to
      j.workingSince = now
      j.groupSize = this.invites.get(`${to}\n${jobId}`) ?? j.groupSize
      j.bytes = trainingFrameBytes(Number(msg.inviteReply.paramCount ?? 0))
      this.allow(now, to, j.bytes)
    } else if (msg.stateRequest != null) {
      // we asked `to` for a model's state (joining a job): it may send it
      this.allow(now, to, this.bytesOf(this.live(now, msg.stateRequest.jobId ?? '')))
    } else if (msg.join != null) {
      const j = this.job(now, msg.join.jobId ?? '')
      j.coordinator = to
      j.workingSince = now
    }
  }

  /** A message this node received from `from` (already decoded). */
  onReceive (now: number, from: string, msg: TrainingMessage): void {
    if (msg.invite != null) {
      // the group size, for when (if) we accept: bounded, the oldest forgotten first
      const key = `${from}\n${msg.invite.jobId}`
      this.invites.delete(key)
      if (this.invites.size >= MAX_INVITES) this.invites.delete(this.invites.keys().next().value as string)
      this.invites.set(key, msg.invite.shards)
    } else if (msg.inviteReply != null) {
      const j = this.peek(now, msg.inviteReply.jobId)
      if (j?.coordinating === true && j.invited.has(from) && msg.inviteReply.accepted) {
        this.live(now, msg.inviteReply.jobId)
        const bytes = trainingFrameBytes(msg.inviteReply.paramCount)
        j.bytes = Math.max(j.bytes ?? 0, bytes)
        this.allow(now, from, bytes)
      }
    } else if (msg.roundStart != null) {
      // the coordinator of a job we work in names this round's members
      const j = this.peek(now, msg.roundStart.jobId)
      if (j !== undefined && j.coordinator === from) {
        this.live(now, msg.roundStart.jobId)
        j.lastRoundAt = now
        this.allow(now, from, this.bytesOf(j))
        const cap = j.groupSize !== undefined && j.groupSize > 0 ? Math.min(MAX_ROUND_MEMBERS, 2 * j.groupSize) : MAX_ROUND_MEMBERS
        for (const m of msg.roundStart.members.slice(0, cap)) this.allow(now, m, this.bytesOf(j))
      }
    } else if (msg.stateResponse != null) {
      const j = this.peek(now, msg.stateResponse.jobId)
      if (j !== undefined && j.bytes === undefined) j.bytes = trainingFrameBytes(msg.stateResponse.params.length / 4)
    }
  }
}
