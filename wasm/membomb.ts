// Allocates and touches 1 MiB after 1 MiB forever: used to check the memory cap.
import { allocBytes } from './abi'

export function alloc (len: i32): usize { return allocBytes(len) }

export function run (ptr: usize, len: i32): usize {
  let total: u32 = 0
  while (true) {
    const p = heap.alloc(1 << 20)
    memory.fill(p, 0xab, 1 << 20)
    total += 1
    store<u32>(ptr, total)
  }
  return 0
}
