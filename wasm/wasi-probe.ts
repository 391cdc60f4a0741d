// A hostile WASI command for the security tests (entry _start): stdin holds paths, one per line; for each it
// tries to open the path (relative to the preopened directory, fd 3, and to fds 4-7 in case more were given)
// and writes "PATH: denied ERRNO" (the errno from fd 3) or "PATH: read N: CONTENT" (up to 256 bytes of the
// file, newlines written as "|") to stdout.
// Against the in-memory WASI every host path must be denied.

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

/** Reads up to `cap` bytes of fd into buf; the count. */
function readFd (fd: u32, buf: usize, cap: u32): u32 {
  const iov = heap.alloc(16)
  let len: u32 = 0
  while (len < cap) {
    store<u32>(iov, <u32>(buf + len))
    store<u32>(iov + 4, cap - len)
    if (fd_read(fd, iov, 1, iov + 8) != 0) break
    const n = load<u32>(iov + 8)
    if (n == 0) break
    len += n
  }
  return len
}

function probe (path: usize, pathLen: u32): void {
  const fdOut = heap.alloc(8)
  // rights: fd_read (1 << 1)
  let errno = path_open(3, 1, path, pathLen, 0, 2, 0, 0, fdOut)
  for (let dirfd: u32 = 4; dirfd < 8 && errno != 0; dirfd++) {
    if (path_open(dirfd, 1, path, pathLen, 0, 2, 0, 0, fdOut) == 0) errno = 0
  }
  writeAll(path, pathLen)
  if (errno != 0) {
    writeText(': denied ' + errno.toString() + '\n')
    return
  }
  const content = heap.alloc(256)
  const n = readFd(load<u32>(fdOut), content, 256)
  for (let i: u32 = 0; i < n; i++) if (load<u8>(content + i) == 0x0a) store<u8>(content + i, 0x7c)
  writeText(': read ' + n.toString() + ': ')
  writeAll(content, n)
  writeText('\n')
}

export function _start (): void {
  const buf = heap.alloc(<usize>CAP)
  const len = readFd(0, buf, <u32>CAP)
  let start: u32 = 0
  for (let i: u32 = 0; i <= len; i++) {
    if (i == len || load<u8>(buf + i) == 0x0a) {
      if (i > start) probe(buf + start, i - start)
      start = i + 1
    }
  }
}
