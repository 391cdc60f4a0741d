// Who may send large all-reduce frames, and when a refused one is excused as an early slice:
// only within a while of accepting a job or of its last RoundStart; jobs expire; a RoundStart
// grants at most the job's group (twice its size, for joins), at most 64 ids.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TrainingMembers, trainingFrameBytes, MEMBERSHIP_TTL_MS, EARLY_SLICE_WINDOW_MS, MAX_ROUND_MEMBERS } from '../../../src/training/members.js'
import type { TrainingMessage } from '../../../src/training/transport.js'

const msg = (m: Partial<Record<keyof TrainingMessage, unknown>>): TrainingMessage => m as TrainingMessage
const MAX = 64 * 1024 * 1024

test('early slices are excused only within the window after accepting a job or after its last RoundStart', () => {
  const m = new TrainingMembers(MAX)
  assert.not.ok(m.worksInAJob(0), 'no job: nothing is excused')
  m.onSend(1000, 'C', { inviteReply: { jobId: 'j', accepted: true, paramCount: 10 } })
  assert.ok(m.worksInAJob(1000 + EARLY_SLICE_WINDOW_MS))
  assert.not.ok(m.worksInAJob(1001 + EARLY_SLICE_WINDOW_MS), 'an accepted job that never started a round stops excusing')
  const t = 1000 + 5 * EARLY_SLICE_WINDOW_MS
  m.onReceive(t, 'C', msg({ roundStart: { jobId: 'j', members: ['C', 'B'] } }))
  assert.ok(m.worksInAJob(t + EARLY_SLICE_WINDOW_MS), 'a RoundStart opens the window again')
  assert.not.ok(m.worksInAJob(t + EARLY_SLICE_WINDOW_MS + 1))
  // a RoundStart from anyone else than the coordinator does not
  m.onReceive(t + 10 * EARLY_SLICE_WINDOW_MS, 'X', msg({ roundStart: { jobId: 'j', members: ['X'] } }))
  assert.not.ok(m.worksInAJob(t + 10 * EARLY_SLICE_WINDOW_MS))
  // a refused invite is no job
  const n = new TrainingMembers(MAX)
  n.onSend(0, 'C', { inviteReply: { jobId: 'k', accepted: false } })
  assert.not.ok(n.worksInAJob(0))
})

test('an early slice is excused only up to the size of the job\'s model', () => {
  const m = new TrainingMembers(MAX)
  assert.is(m.earlySliceBytes(0), 0)
  m.onSend(0, 'C', { inviteReply: { jobId: 'j', accepted: true, paramCount: 1000 } })
  assert.is(m.earlySliceBytes(10), trainingFrameBytes(1000), 'a frame larger than the model is charged')
  assert.is(m.earlySliceBytes(EARLY_SLICE_WINDOW_MS + 1), 0)
})

test('a joining node is working in the job from its join', () => {
  const m = new TrainingMembers(MAX)
  m.onSend(0, 'C', { join: { jobId: 'j' } })
  assert.ok(m.worksInAJob(10))
  assert.not.ok(m.worksInAJob(EARLY_SLICE_WINDOW_MS + 1))
})

test('job entries expire MEMBERSHIP_TTL_MS after their last message: a late RoundStart grants nothing', () => {
  const m = new TrainingMembers(MAX)
  m.onSend(0, 'C', { inviteReply: { jobId: 'j', accepted: true, paramCount: 10 } })
  assert.is(m.jobCount, 1)
  const late = MEMBERSHIP_TTL_MS + 1
  m.onReceive(late, 'C', msg({ roundStart: { jobId: 'j', members: ['B'] } }))
  assert.is(m.limitOf(late, 'B'), 0, 'the job is gone: its old coordinator names no one')
  assert.is(m.jobCount, 0)
  assert.not.ok(m.worksInAJob(late))
  // while messages keep coming the job stays
  const k = new TrainingMembers(MAX)
  k.onSend(0, 'C', { inviteReply: { jobId: 'j', accepted: true, paramCount: 10 } })
  for (let t = 60_000; t <= 3 * MEMBERSHIP_TTL_MS; t += 60_000) k.onReceive(t, 'C', msg({ roundStart: { jobId: 'j', members: ['B'] } }))
  assert.is(k.limitOf(3 * MEMBERSHIP_TTL_MS, 'B'), trainingFrameBytes(10))
})

test('a RoundStart grants large frames to at most twice the group size named in the invitation', () => {
  const m = new TrainingMembers(MAX)
  m.onReceive(0, 'C', msg({ invite: { jobId: 'j', shards: 3, rank: 0 } }))
  m.onSend(1, 'C', { inviteReply: { jobId: 'j', accepted: true, paramCount: 10 } })
  const ids = Array.from({ length: 1024 }, (_, i) => `p${i}`)
  m.onReceive(2, 'C', msg({ roundStart: { jobId: 'j', members: ids } }))
  const granted = ids.filter(p => m.limitOf(2, p) > 0)
  assert.equal(granted, ids.slice(0, 6))
})

test('without a known group size a RoundStart grants at most MAX_ROUND_MEMBERS', () => {
  const m = new TrainingMembers(MAX)
  m.onSend(0, 'C', { join: { jobId: 'j' } })
  const ids = Array.from({ length: 1024 }, (_, i) => `p${i}`)
  m.onReceive(1, 'C', msg({ roundStart: { jobId: 'j', members: ids } }))
  assert.is(ids.filter(p => m.limitOf(1, p) > 0).length, MAX_ROUND_MEMBERS)
  assert.is(MAX_ROUND_MEMBERS, 64)
})

test('an invitation from another peer does not set the group size of the job we accepted from C', () => {
  const m = new TrainingMembers(MAX)
  m.onReceive(0, 'X', msg({ invite: { jobId: 'j', shards: 1, rank: 0 } }))
  m.onSend(1, 'C', { inviteReply: { jobId: 'j', accepted: true, paramCount: 10 } })
  const ids = Array.from({ length: 100 }, (_, i) => `p${i}`)
  m.onReceive(2, 'C', msg({ roundStart: { jobId: 'j', members: ids } }))
  assert.is(ids.filter(p => m.limitOf(2, p) > 0).length, MAX_ROUND_MEMBERS)
})

test.run()
