// A hostile WASI command for the sandbox tests (entry _start): it tries to make the host hold memory for it
// through the in-memory file system (create files, grow files with fd_allocate / fd_filestat_set_size, write
// past their end) and writes one line "CALL: ERRNO" per attempt to stdout. Against the read-only task
// file system every attempt fails with an errno and nothing grows. Sizes: 1 GiB per attempt.

@external('wasi_snapshot_preview1', 'fd_write')
declare function fd_write (fd: u32, iovs: usize, iovsLen: u32, nwritten: usize): u16
@external('wasi_snapshot_preview1', 'fd_pwrite')
declare function fd_pwrite (fd: u32, iovs: usize, iovsLen: u32, offset: u64, nwritten: usize): u16
@external('wasi_snapshot_preview1', 'fd_allocate')
declare function fd_allocate (fd: u32, offset: u64, len: u64): u16
@external('wasi_snapshot_preview1', 'fd_filestat_set_size')
declare function fd_filestat_set_size (fd: u32, size: u64): u16
@external('wasi_snapshot_preview1', 'path_open')
declare function path_open (dirfd: u32, dirflags: u32, path: usize, pathLen: u32, oflags: u16, rightsBase: u64, rightsInheriting: u64, fdflags: u16, fdOut: usize): u16
@external('wasi_snapshot_preview1', 'path_create_directory')
declare function path_create_directory (fd: u32, path: usize, pathLen: u32): u16

const HUGE: u64 = 1 << 30
// fd_read | fd_write | fd_allocate | fd_filestat_set_size
const RW_RIGHTS: u64 = (1 << 1) | (1 << 6) | (1 << 8) | (1 << 22)
const CREAT: u16 = 1
const TRUNC: u16 = 8

function writeAll (buf: usize, len: u32): void {
  const iov = heap.alloc(16)
  store<u32>(iov, <u32>buf)
  store<u32>(iov + 4, len)
  fd_write(1, iov, 1, iov + 8)
}

function report (what: string, errno: u16): void {
  const b = String.UTF8.encode(what + ': ' + errno.toString() + '\n')
  writeAll(changetype<usize>(b), <u32>b.byteLength)
}

function open (name: string, oflags: u16, rights: u64, fdOut: usize): u16 {
  const p = String.UTF8.encode(name)
  return path_open(3, 0, changetype<usize>(p), <u32>p.byteLength, oflags, rights, 0, 0, fdOut)
}

/** Every way to grow fd: allocate, set_size, pwrite and write past the end. */
function grow (label: string, fd: u32): void {
  report(label + ' fd_allocate', fd_allocate(fd, 0, HUGE))
  report(label + ' fd_filestat_set_size', fd_filestat_set_size(fd, HUGE))
  const iov = heap.alloc(16)
  const byte = heap.alloc(1)
  store<u8>(byte, 0x41)
  store<u32>(iov, <u32>byte)
  store<u32>(iov + 4, 1)
  report(label + ' fd_pwrite', fd_pwrite(fd, iov, 1, HUGE, iov + 8))
  report(label + ' fd_write', fd_write(fd, iov, 1, iov + 8))
}

export function _start (): void {
  const fdOut = heap.alloc(8)
  for (let i = 0; i < 4; i++) {
    const errno = open('scratch' + i.toString(), CREAT, RW_RIGHTS, fdOut)
    report('path_open CREAT scratch' + i.toString(), errno)
    if (errno == 0) grow('scratch' + i.toString(), load<u32>(fdOut))
  }
  grow('stdin', 0)
  const ro = open('input', 0, 1 << 1, fdOut)
  report('path_open input', ro)
  if (ro == 0) grow('input', load<u32>(fdOut))
  report('path_open input TRUNC', open('input', TRUNC, 1 << 1, fdOut))
  const d = String.UTF8.encode('dir')
  report('path_create_directory', path_create_directory(3, changetype<usize>(d), <u32>d.byteLength))
}
