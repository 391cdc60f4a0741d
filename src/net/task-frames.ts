// A task's bytes on a lease stream, encoded once: a TaskMessage holding one Task (field 4) or a
// TaskBundle (field 9) of several, built around each Task's own encoding (dbc.task.v1.Task), so a
// copy that joins a bundle is not encoded again. The bytes are what TaskMessage.encode gives.

/** Bytes of a varint. */
function varintBytes (n: number): number {
  let k = 1
  while (n >= 0x80) { n = Math.floor(n / 0x80); k++ }
  return k
}

function putVarint (out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) { out[at++] = (n % 0x80) | 0x80; n = Math.floor(n / 0x80) }
  out[at++] = n
  return at
}

/** Bytes of a length-delimited field of `len` bytes (a one-byte tag). */
export function taskFrameBytes (len: number): number {
  return 1 + varintBytes(len) + len
}

function field (tag: number, parts: readonly Uint8Array[], len: number): Uint8Array {
  const out = new Uint8Array(taskFrameBytes(len))
  out[0] = tag
  let at = putVarint(out, 1, len)
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

/** TaskMessage { task } from the Task's encoding. */
export function taskFrame (task: Uint8Array): Uint8Array {
  return field((4 << 3) | 2, [task], task.length)
}

/** TaskMessage { bundle: TaskBundle { tasks } } from each Task's encoding. */
export function bundleFrame (tasks: readonly Uint8Array[]): Uint8Array {
  const inner = tasks.map(t => field((1 << 3) | 2, [t], t.length))
  let len = 0
  for (const f of inner) len += f.length
  return field((9 << 3) | 2, inner, len)
}
