// TrainingMessage frames of /dbc/allreduce/1.0.0 (and of the overlay's training frames): the
// decoded shape, and an encoder that does not copy a large slice's data.
import { dbc } from '../wire/gen/wire.js'
import $protobuf from 'protobufjs/minimal.js'
import { Uint8ArrayList } from 'uint8arraylist'

const Codec = dbc.training.v1.TrainingMessage
type T = typeof dbc.training.v1

/** A decoded message: protobufjs fills every scalar with its default, so bodies are complete. */
export interface TrainingMessage {
  invite?: InstanceType<T['Invite']> | null
  inviteReply?: InstanceType<T['InviteReply']> | null
  roundStart?: InstanceType<T['RoundStart']> | null
  slice?: InstanceType<T['SliceChunk']> | null
  stateRequest?: InstanceType<T['StateRequest']> | null
  stateResponse?: InstanceType<T['StateResponse']> | null
  join?: InstanceType<T['Join']> | null
  report?: InstanceType<T['RoundReport']> | null
  finish?: InstanceType<T['Finish']> | null
}

export type TrainingMessageInput = dbc.training.v1.TrainingMessage.$Properties

export function decodeTrainingMessage (frame: Uint8Array): TrainingMessage {
  return Codec.decode(frame) as unknown as TrainingMessage
}

/** Slice data at least this large is not copied into the encoded message (zero-copy encode). */
const ZERO_COPY_BYTES = 16 * 1024

/**
 * Encodes a message; a large SliceChunk's data is not copied: the result is then a list of
 * [outer tag + length, the chunk's other fields, data tag + length, the data itself], which is
 * the same protobuf message (fields may come in any order). All-reduce moves megabytes a round,
 * and the copy was most of its garbage.
 */
export function encodeTrainingMessage (msg: TrainingMessageInput): Uint8Array | Uint8ArrayList {
  const data = msg.slice?.data
  if (msg.slice == null || data == null || data.length < ZERO_COPY_BYTES) return Codec.encode(msg).finish()
  const head = dbc.training.v1.SliceChunk.encode({ ...msg.slice, data: undefined }).finish()
  const dataPrefix = $protobuf.Writer.create().uint32((7 << 3) | 2).uint32(data.length).finish()
  const sliceLength = head.length + dataPrefix.length + data.length
  const outer = $protobuf.Writer.create().uint32((4 << 3) | 2).uint32(sliceLength).finish()
  return new Uint8ArrayList(outer, head, dataPrefix, data)
}

/** The job a message belongs to (every body names one), or undefined for an empty message. */
export function jobOf (msg: TrainingMessageInput): string | undefined {
  const b = msg.invite ?? msg.inviteReply ?? msg.roundStart ?? msg.slice ?? msg.stateRequest ?? msg.stateResponse ?? msg.join ?? msg.report ?? msg.finish
  const id = b?.jobId
  return typeof id === 'string' && id.length > 0 ? id : undefined
}
