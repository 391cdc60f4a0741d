// What the peer side of a training job shares with others: a round's metering (turned into a
// signed receipt), its typed error, and the float32 <-> bytes codec of parameters and states.
import { DbcError } from '../errors.js'

/** What a peer metered for one round; `meter` may turn it into a signed receipt. */
export interface RoundMetering {
  jobId: string
  round: number
  peer: string
  coordinator: string
  /** Wall time of the local steps (the trainer's compute), ms. */
  computeMs: number
  /** Process CPU time over the local steps, ms. */
  cpuMs: number
  startedAt: number
  finishedAt: number
  bytesIn: number
  bytesOut: number
  samples: number
  /** Whether the trainer ran the steps on a GPU (the built-in one never does): only then GPU-seconds are billed. */
  usesGpu?: boolean
  /** GPUs the job takes (its spec's gpu.count): GPU-seconds are billed for these, not for every GPU the node has. */
  gpus?: number
}

export class TrainingError extends DbcError {
  override name = 'TrainingError'
}

export function floatsToBytes (v: Float32Array): Uint8Array {
  // float32 little-endian (every platform Node runs on is little-endian)
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength))
}

export function bytesToFloats (b: Uint8Array): Float32Array {
  if (b.byteLength % 4 !== 0) throw new TrainingError('BAD_PARAMS', `${b.byteLength} bytes is not a whole number of float32 values`)
  const copy = new Uint8Array(b.byteLength)
  copy.set(b)
  return new Float32Array(copy.buffer)
}
