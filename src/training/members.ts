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
/** Slack beside a model's bytes: message fields, and a RoundStart naming every member. */
const FRAME_SLACK = 64 * 1024

/**
 * Largest frame a job with `params` parameters needs: the densest codec (top-k at fraction 1)
 * sends an index and a value, 8 bytes per parameter; a model state is 4 bytes per parameter.
 */
export function trainingFrameBytes (params: number): number {
  return 8 * Math.max(0, params) + FRAME_SLACK
}

interface Job { coordinator?: string, bytes?: number, invited: Set<string>, coordinating: boolean }

export class TrainingMembers {
  private readonly peers = new Map<string, { bytes: number, until: number }>()
  private readonly jobs = new Map<string, Job>()

  constructor (private readonly maxFrame: number) {}

  /**
   * True while this node works in a job (it accepted an invite): a member's first slice can then
   * arrive before the RoundStart that names it, so a refused large frame is not held against its
   * sender (it is still refused at its prefix, so it costs the node nothing).
   */
  worksInAJob (): boolean {
    for (const j of this.jobs.values()) if (j.coordinator !== undefined) return true
    return false
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

  private job (jobId: string): Job {
    let j = this.jobs.get(jobId)
    if (j === undefined) {
      if (this.jobs.size >= MAX_JOBS) this.jobs.delete(this.jobs.keys().next().value as string)
      j = { invited: new Set(), coordinating: false }
      this.jobs.set(jobId, j)
    }
    return j
  }

  private bytesOf (j: Job | undefined): number { return j?.bytes ?? this.maxFrame }

  /** A message this node sends to `to`. */
  onSend (now: number, to: string, msg: TrainingMessageInput): void {
    if (msg.invite != null) {
      const j = this.job(msg.invite.jobId ?? '')
      j.coordinating = true
      if (j.invited.size < 1024) j.invited.add(to)
    } else if (msg.roundStart != null) {
      const j = this.jobs.get(msg.roundStart.jobId ?? '')
      if (j?.coordinating === true) for (const m of msg.roundStart.members ?? []) if (j.invited.has(m) || m === to) this.allow(now, m, this.bytesOf(j))
    } else if (msg.inviteReply != null && msg.inviteReply.accepted === true) {
      // we accepted to work in this job: its coordinator may send us the model's frames
      const j = this.job(msg.inviteReply.jobId ?? '')
      j.coordinator = to
      j.bytes = trainingFrameBytes(Number(msg.inviteReply.paramCount ?? 0))
      this.allow(now, to, j.bytes)
    } else if (msg.stateRequest != null) {
      // we asked `to` for a model's state (joining a job): it may send it
      this.allow(now, to, this.bytesOf(this.jobs.get(msg.stateRequest.jobId ?? '')))
    } else if (msg.join != null) {
      this.job(msg.join.jobId ?? '').coordinator = to
    }
  }

  /** A message this node received from `from` (already decoded). */
  onReceive (now: number, from: string, msg: TrainingMessage): void {
    if (msg.inviteReply != null) {
      const j = this.jobs.get(msg.inviteReply.jobId)
      if (j?.coordinating === true && j.invited.has(from) && msg.inviteReply.accepted) {
        const bytes = trainingFrameBytes(msg.inviteReply.paramCount)
        j.bytes = Math.max(j.bytes ?? 0, bytes)
        this.allow(now, from, bytes)
      }
    } else if (msg.roundStart != null) {
      // the coordinator of a job we work in names this round's members
      const j = this.jobs.get(msg.roundStart.jobId)
      if (j !== undefined && j.coordinator === from) {
        this.allow(now, from, this.bytesOf(j))
        for (const m of msg.roundStart.members.slice(0, 1024)) this.allow(now, m, this.bytesOf(j))
      }
    } else if (msg.stateResponse != null) {
      const j = this.jobs.get(msg.stateResponse.jobId)
      if (j !== undefined && j.bytes === undefined) j.bytes = trainingFrameBytes(msg.stateResponse.params.length / 4)
    }
  }
}
