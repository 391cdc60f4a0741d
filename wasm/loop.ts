// Never returns: used to check that the wall-time limit kills a task and frees its slot.
import { allocBytes } from './abi'

export function alloc (len: i32): usize { return allocBytes(len) }

export function run (ptr: usize, len: i32): usize {
  let i: u32 = 0
  while (true) {
    i++
    store<u32>(ptr, i) // a side effect, so no optimiser may drop the loop
  }
  return 0
}
