// A WASI command (entry _start): reads stdin, writes it upper-cased to stdout.
// If the input starts with "open:", it instead tries to open the path after the prefix in the
// preopened task directory (fd 3) and writes "opened" or "denied <errno>": used to check that a
// module cannot reach files outside its task directory.

@external('wasi_snapshot_preview1', 'fd_read')
declare function fd_read (fd: u32, iovs: usize, iovsLen: u32, nread: usize): u16
@external('wasi_snapshot_preview1', 'fd_write')
declare function fd_write (fd: u32, iovs: usize, iovsLen: u32, nwritten: usize): u16
@external('wasi_snapshot_preview1', 'path_open')
declare function path_open (dirfd: u32, dirflags: u32, path: usize, pathLen: u32, oflags: u16, rightsBase: u64, rightsInheriting: u64, fdflags: u16, fdOut: usize): u16

const CAP: i32 = 1 << 16

function writeAll (buf: usize, len: u32): void {
  const iov = heap.alloc(16)
  store<u32>(iov, <u32>buf)
  store<u32>(iov + 4, len)
  fd_write(1, iov, 1, iov + 8)
}

function writeText (s: string): void {
  const b = String.UTF8.encode(s)
  writeAll(changetype<usize>(b), <u32>b.byteLength)
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
  if (len >= 5 && load<u8>(buf) == 0x6f && load<u8>(buf + 1) == 0x70 && load<u8>(buf + 2) == 0x65 && load<u8>(buf + 3) == 0x6e && load<u8>(buf + 4) == 0x3a) {
    const fdOut = heap.alloc(8)
    // rights: fd_read (1 << 1)
    const errno = path_open(3, 0, buf + 5, len - 5, 0, 2, 0, 0, fdOut)
    if (errno == 0) writeText('opened')
    else writeText('denied ' + errno.toString())
    return
  }
  for (let i: u32 = 0; i < len; i++) {
    const c = load<u8>(buf + i)
    if (c >= 0x61 && c <= 0x7a) store<u8>(buf + i, c - 32)
  }
  writeAll(buf, len)
}
