// The task-module ABI (see src/compute/README.md), shared by every module in wasm/.
// The host calls alloc(len) to get room for the input, copies the input there, then calls the
// entry (default "run") with (ptr, len). The entry returns a pointer to [u32 length LE][bytes].

export function allocBytes (len: i32): usize {
  return heap.alloc(<usize>max(len, 1))
}

/** Reserves an output buffer of `len` bytes and returns the pointer to its first data byte. */
export function outputBuffer (len: i32): usize {
  const p = heap.alloc(<usize>(len + 4))
  store<u32>(p, <u32>len)
  return p
}
