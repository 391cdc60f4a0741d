// A WASI command that writes a log (entry _start), for the task-log tests: it reads stdin, writes
// "wasi-log: read N bytes" and then the input itself to stderr, and the input upper-cased to stdout.
// An input that starts with "fail:" makes it exit with code 3 after the same stderr; one that starts
// with "slow:" first spins the CPU for a while (10^8 steps, under a second), so a job of a few lasts a while.

@external('wasi_snapshot_preview1', 'fd_read')
declare function fd_read (fd: u32, iovs: usize, iovsLen: u32, nread: usize): u16
@external('wasi_snapshot_preview1', 'fd_write')
declare function fd_write (fd: u32, iovs: usize, iovsLen: u32, nwritten: usize): u16
@external('wasi_snapshot_preview1', 'proc_exit')
declare function proc_exit (code: u32): void

const CAP: i32 = 1 << 16
const SPIN: u32 = 100_000_000

function writeAll (fd: u32, buf: usize, len: u32): void {
  const iov = heap.alloc(16)
  store<u32>(iov, <u32>buf)
  store<u32>(iov + 4, len)
  fd_write(fd, iov, 1, iov + 8)
}

function writeText (fd: u32, s: string): void {
  const b = String.UTF8.encode(s)
  writeAll(fd, changetype<usize>(b), <u32>b.byteLength)
}

export function _start (): void {
  const buf = heap.alloc(<usize>CAP)
  const iov = heap.alloc(16)
  let len: u32 = 0
  while (len < <u32>CAP) {
    store<u32>(iov, <u32>(buf + len))
    store<u32>(iov + 4, <u32>CAP - len)
    if (fd_read(0, iov, 1, iov + 8) != 0) break
    const n = load<u32>(iov + 8)
    if (n == 0) break
    len += n
  }
  writeText(2, 'wasi-log: read ' + len.toString() + ' bytes\n')
  if (len >= 5 && load<u8>(buf) == 0x73 && load<u8>(buf + 1) == 0x6c && load<u8>(buf + 2) == 0x6f && load<u8>(buf + 3) == 0x77 && load<u8>(buf + 4) == 0x3a) {
    let x: u32 = len
    for (let i: u32 = 0; i < SPIN; i++) x = x * 1103515245 + 12345
    writeText(2, 'spun to ' + x.toString() + '\n')
  }
  writeAll(2, buf, len)
  if (len >= 5 && load<u8>(buf) == 0x66 && load<u8>(buf + 1) == 0x61 && load<u8>(buf + 2) == 0x69 && load<u8>(buf + 3) == 0x6c && load<u8>(buf + 4) == 0x3a) {
    proc_exit(3)
    return
  }
  for (let i: u32 = 0; i < len; i++) {
    const c = load<u8>(buf + i)
    if (c >= 0x61 && c <= 0x7a) store<u8>(buf + i, c - 32)
  }
  writeAll(1, buf, len)
}
