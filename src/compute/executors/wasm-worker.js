// @ts-check
// The wasm executor's worker thread (plain JS so it starts without the TypeScript loader).
// One task at a time (or a bundle's tasks one after another, in one message each way):
// instantiate the (already validated, memory-capped) module with a fresh
// memory, copy the input in, call the entry, copy the output out. See src/compute/README.md.
// WASI modules run against @bjorn3/browser_wasi_shim: a pure-JS WASI whose file system is in memory and
// holds only the task's input, so no host path exists for the module to reach. That file system is made
// read-only here: the shim's files are ArrayBuffers outside the worker's heap limits, so a writable one would
// let a task grow the daemon by gigabytes (fd_allocate, fd_filestat_set_size, writes past the end).
import { parentPort } from 'node:worker_threads'
import { getHeapStatistics } from 'node:v8'
import { WASI, File, OpenFile, OpenDirectory, PreopenDirectory, ConsoleStdout, wasi as defs } from '@bjorn3/browser_wasi_shim'

if (parentPort === null) throw new Error('wasm-worker.js must run in a worker thread')
const port = parentPort

class TaskFailure extends Error {
  /** @param {string} code @param {string} message */
  constructor (code, message) { super(message); this.code = code }
}

/** Reads an AssemblyScript string (UTF-16, length in the header before ptr) for abort messages. */
function readAsString (memory, ptr) {
  if (ptr === 0 || ptr < 4 || ptr > memory.buffer.byteLength) return ''
  const len = new Uint32Array(memory.buffer.slice(ptr - 4, ptr))[0] >>> 1
  if (ptr + len * 2 > memory.buffer.byteLength) return ''
  return String.fromCharCode(...new Uint16Array(memory.buffer.slice(ptr, ptr + Math.min(len, 500) * 2)))
}

/** The running task's memory, read after a trap to tell a memory cap from other traps. */
/** @type {WebAssembly.Memory | undefined} */
let currentMemory

function run (msg) {
  refused.clear()
  taskLog = new Tail(LOG_KEEP)
  let lastProgress = 0
  /** @type {WebAssembly.Memory | undefined} */
  let memory
  currentMemory = undefined
  const env = {
    abort (msgPtr, filePtr, line, col) {
      const text = memory === undefined ? '' : readAsString(memory, msgPtr)
      const file = memory === undefined ? '' : readAsString(memory, filePtr)
      throw new TaskFailure('TASK_TRAP', `module aborted${text ? `: ${text}` : ''}${file ? ` at ${file}:${line}:${col}` : ''}`)
    },
    progress (fraction) {
      if (!msg.wantProgress) return
      const now = performance.now()
      if (now - lastProgress < 20 && fraction < 1) return
      lastProgress = now
      port.postMessage({ type: 'progress', id: msg.id, fraction: Math.min(1, Math.max(0, Number(fraction) || 0)) })
    },
    // AssemblyScript's trace(message, n, a0..a4): a line of the task's log (ABI modules have no stderr)
    trace (msgPtr, n, a0, a1, a2, a3, a4) {
      const text = memory === undefined ? '' : readAsString(memory, msgPtr)
      const args = [a0, a1, a2, a3, a4].slice(0, Math.max(0, Math.min(5, n | 0)))
      taskLog.push(new TextEncoder().encode(`trace: ${text}${args.length > 0 ? ' ' + args.join(', ') : ''}\n`))
    },
    // AssemblyScript's Math.random seed: fixed, so runs are deterministic.
    seed () { return 42 }
  }
  /** @type {Record<string, Record<string, unknown>>} */
  const imports = { env }
  if (msg.importMemory !== undefined) {
    const m = msg.importMemory
    memory = new WebAssembly.Memory({ initial: m.minPages, maximum: m.maxPages })
    imports[m.module] = { ...(imports[m.module] ?? {}), [m.field]: memory }
  }
  if (msg.mode === 'wasi') return runWasi(msg, imports, (m) => { memory = m; currentMemory = m })
  const t0 = process.threadCpuUsage()
  const instance = new WebAssembly.Instance(msg.module, imports)
  const ex = instance.exports
  if (memory === undefined) memory = /** @type {WebAssembly.Memory} */ (ex.memory)
  currentMemory = memory
  const alloc = /** @type {(n: number) => number} */ (ex.alloc)
  const entry = /** @type {(p: number, n: number) => number} */ (ex[msg.entry])
  const input = msg.input
  const ptr = alloc(input.length) >>> 0
  if (ptr + input.length > memory.buffer.byteLength) throw new TaskFailure('TASK_BAD_MODULE', `alloc(${input.length}) returned ${ptr}, outside the module's memory`)
  new Uint8Array(memory.buffer, ptr, input.length).set(input)
  const out = entry(ptr, input.length) >>> 0
  const size = memory.buffer.byteLength
  if (out + 4 > size) throw new TaskFailure('TASK_BAD_MODULE', `${msg.entry} returned pointer ${out}, outside the module's memory (${size} bytes)`)
  const len = new DataView(memory.buffer).getUint32(out, true)
  if (len > msg.maxOutputBytes) throw new TaskFailure('TASK_OUTPUT_TOO_LARGE', `output of ${len} bytes is above the limit of ${msg.maxOutputBytes} bytes`)
  if (out + 4 + len > size) throw new TaskFailure('TASK_BAD_MODULE', `${msg.entry} returned an output of ${len} bytes that runs past the module's memory`)
  const output = new Uint8Array(memory.buffer.slice(out + 4, out + 4 + len))
  const t1 = process.threadCpuUsage(t0)
  return { output, cpuMs: (t1.user + t1.system) / 1000 }
}

/** Bytes of a task's stderr (and trace lines) kept, its tail: output-tail.ts's TASK_LOG_TAIL_BYTES. */
const LOG_KEEP = 64 * 1024

/** The last `cap` bytes written (plain JS twin of output-tail.ts's TailBuffer, which this thread cannot import). */
class Tail {
  /** @param {number} cap */
  constructor (cap) { this.cap = cap; /** @type {Uint8Array[]} */ this.parts = []; this.kept = 0; this.total = 0 }
  /** @param {Uint8Array} data */
  push (data) {
    this.total += data.length
    const part = data.length > this.cap ? data.subarray(data.length - this.cap) : data
    this.parts.push(part.slice())
    this.kept += part.length
    while (this.kept - this.parts[0].length >= this.cap) this.kept -= /** @type {Uint8Array} */ (this.parts.shift()).length
  }

  bytes () {
    const all = new Uint8Array(this.kept)
    let at = 0
    for (const p of this.parts) { all.set(p, at); at += p.length }
    return all.length > this.cap ? all.slice(all.length - this.cap) : all
  }

  text () { return new TextDecoder().decode(this.bytes()) }
}

/** The running task's stderr (WASI) or trace lines (ABI). */
let taskLog = new Tail(LOG_KEEP)

/** Calls the task made that the read-only file system refused (named in the error if the task then fails). */
/** @type {Map<string, number>} */
const refused = new Map()
/** @param {string} call */
function refuse (call) {
  refused.set(call, (refused.get(call) ?? 0) + 1)
  return defs.ERRNO_ROFS
}

// An open input file: reads and seeks as the shim's, every call that could grow or change it refused.
class ReadOnlyOpenFile extends OpenFile {
  fd_allocate () { return refuse('fd_allocate') }
  fd_filestat_set_size () { return refuse('fd_filestat_set_size') }
  fd_filestat_set_times () { return refuse('fd_filestat_set_times') }
  fd_write () { return { ret: refuse('fd_write'), nwritten: 0 } }
  fd_pwrite () { return { ret: refuse('fd_pwrite'), nwritten: 0 } }
}

const WRITE_RIGHTS = BigInt(defs.RIGHTS_FD_WRITE | defs.RIGHTS_FD_ALLOCATE | defs.RIGHTS_FD_FILESTAT_SET_SIZE)

/**
 * A directory of the task's file system that lists and opens what is there and creates, links, renames or
 * removes nothing; what it opens is read-only too.
 * @template {new (...args: any[]) => OpenDirectory} B @param {B} Base
 */
function readOnlyDirectory (Base) {
  return class extends Base {
    /** @param {number} dirflags @param {string} path @param {number} oflags @param {bigint} rightsBase @param {bigint} rightsInheriting @param {number} fdFlags */
    path_open (dirflags, path, oflags, rightsBase, rightsInheriting, fdFlags) {
      if ((oflags & defs.OFLAGS_TRUNC) !== 0) return { ret: refuse('path_open TRUNC'), fd_obj: null }
      if ((BigInt(rightsBase) & WRITE_RIGHTS) !== 0n) return { ret: refuse('path_open for writing'), fd_obj: null }
      // look the entry up without CREAT: a missing one stays missing (ENOENT), or is refused when asked to be made
      const r = super.path_open(dirflags, path, oflags & ~(defs.OFLAGS_CREAT | defs.OFLAGS_EXCL), rightsBase, rightsInheriting, fdFlags)
      if (r.fd_obj === null) {
        if (r.ret === defs.ERRNO_NOENT && (oflags & defs.OFLAGS_CREAT) !== 0) return { ret: refuse('path_open CREAT'), fd_obj: null }
        return r
      }
      if ((oflags & defs.OFLAGS_EXCL) !== 0) return { ret: defs.ERRNO_EXIST, fd_obj: null }
      if (r.fd_obj instanceof OpenFile) return { ret: r.ret, fd_obj: new ReadOnlyOpenFile(r.fd_obj.file) }
      if (r.fd_obj instanceof OpenDirectory) return { ret: r.ret, fd_obj: new ReadOnlyOpenDirectory(r.fd_obj.dir) }
      return { ret: defs.ERRNO_NOTSUP, fd_obj: null }
    }

    path_create_directory () { return refuse('path_create_directory') }
    path_link () { return refuse('path_link') }
    path_unlink () { return { ret: refuse('path_unlink'), inode_obj: null } }
    path_unlink_file () { return refuse('path_unlink_file') }
    path_remove_directory () { return refuse('path_remove_directory') }
    path_rename () { return refuse('path_rename') }
    path_filestat_set_times () { return refuse('path_filestat_set_times') }
    fd_filestat_set_times () { return refuse('fd_filestat_set_times') }
  }
}
class ReadOnlyOpenDirectory extends readOnlyDirectory(OpenDirectory) {}
class ReadOnlyPreopenDirectory extends readOnlyDirectory(PreopenDirectory) {}

// WASI command: stdin and /task/input are the task's input (read-only), stdout is its output, stderr is kept
// (bounded) for the error message. The file system is the shim's, in memory and read-only: /task is the only
// directory, its one file the input.
function runWasi (msg, imports, setMemory) {
  const chunks = []
  let size = 0
  const stdout = new ConsoleStdout((/** @type {Uint8Array} */ data) => {
    size += data.length
    if (size > msg.maxOutputBytes) throw new TaskFailure('TASK_OUTPUT_TOO_LARGE', `output of more than ${msg.maxOutputBytes} bytes is above the limit`)
    chunks.push(data)
  })
  const errOut = new ConsoleStdout((/** @type {Uint8Array} */ data) => { taskLog.push(data) })
  const input = () => new File(msg.input, { readonly: true })
  const fds = [new ReadOnlyOpenFile(input()), stdout, errOut, new ReadOnlyPreopenDirectory('/task', new Map([['input', input()]]))]
  const wasi = new WASI(['task'], [], fds, { debug: false }) // its debug log is on unless turned off
  const t0 = process.threadCpuUsage()
  const instance = new WebAssembly.Instance(msg.module, { ...imports, wasi_snapshot_preview1: wasi.wasiImport })
  const memory = imports[msg.importMemory?.module ?? '']?.[msg.importMemory?.field ?? ''] ?? instance.exports.memory
  setMemory(memory)
  let code
  try {
    code = wasi.start({ exports: { memory, _start: instance.exports._start } })
  } catch (err) {
    // the shim throws strings for calls it refuses (sockets, proc_raise)
    if (typeof err === 'string') throw new TaskFailure('TASK_TRAP', `WASI: ${err}`)
    throw err
  }
  const t1 = process.threadCpuUsage(t0)
  const stderr = taskLog.text().trim().slice(-500)
  if (code !== 0) throw new TaskFailure('TASK_EXIT_CODE', `WASI module exited with code ${code}${stderr === '' ? '' : `: ${stderr}`}`)
  const output = new Uint8Array(size)
  let at = 0
  for (const c of chunks) { output.set(c, at); at += c.length }
  return { output, cpuMs: (t1.user + t1.system) / 1000 }
}

/** The task's log for the message that ends it (nothing when it wrote none). */
function logMessage () {
  if (taskLog.total === 0) return {}
  return { stderr: taskLog.bytes(), stderrBytes: taskLog.total }
}

/** Names the writes the read-only file system refused, for the error of a task that then failed. */
function refusedNote () {
  if (refused.size === 0) return ''
  return ` (the task's file system is read-only; refused: ${[...refused].map(([call, n]) => n > 1 ? `${call} x${n}` : call).join(', ')})`
}

/** What the task left behind: its linear memory and this isolate's heap (the pool replaces a big worker). */
function footprint () {
  return { memoryBytes: currentMemory?.buffer.byteLength ?? 0, heapBytes: getHeapStatistics().used_heap_size }
}

/**
 * One task's end as the message that reports it: 'done' with its output (and what it left behind:
 * the pool replaces a big worker), or 'error' with the code and message that name why.
 */
function outcome (msg) {
  try {
    const r = run(msg)
    const left = footprint()
    currentMemory = undefined
    return { type: 'done', id: msg.id, output: r.output, cpuMs: r.cpuMs, ...logMessage(), ...left }
  } catch (err) {
    const e = /** @type {Error & { code?: string }} */ (typeof err === 'object' && err !== null ? err : new Error(String(err)))
    let code = e.code ?? 'TASK_TRAP'
    let message = e.message
    if (e instanceof WebAssembly.LinkError) { code = 'TASK_BAD_MODULE'; message = `cannot link the module: ${e.message}` }
    const { memoryBytes, heapBytes } = footprint()
    // A trap with memory at (or within one allocation of) the cap is the cap (AssemblyScript traps with `unreachable` when
    // memory.grow fails; other toolchains abort or throw a RangeError).
    const slack = Math.max(65536, Math.min(2 * 1024 * 1024, msg.memoryCapBytes / 4))
    const nearCap = memoryBytes > 0 && memoryBytes + slack >= msg.memoryCapBytes
    if ((code === 'TASK_TRAP' && nearCap) || (e instanceof RangeError && /memory/i.test(e.message))) {
      code = 'TASK_MEMORY_LIMIT'
      message = `the task hit its memory cap of ${Math.round(msg.memoryCapBytes / 1048576)} MiB (${e.message})`
    } else if (e instanceof WebAssembly.RuntimeError) {
      message = `the module trapped: ${e.message}`
    }
    message += refusedNote()
    currentMemory = undefined
    return { type: 'error', id: msg.id, code, message, memoryBytes, heapBytes, ...logMessage() }
  }
}

/**
 * A bundle's tasks (one module, one slot) in this one message, one after another, answered in one
 * message: each task's 'done' or 'error' with its own times, or 'cut' for one not started because
 * the bundle ran `cutMs` or its outputs reached `cutBytes` (the provider answers it "send it
 * again"), or a drain began (`stop` holds 1), or because a task left this worker big (the pool replaces it before anything more runs
 * here). A task that ran past its own wall-time limit fails TASK_TIMEOUT (its output dropped): this
 * thread cannot stop it, the pool's watchdog stops the whole bundle at `cutMs` + the longest limit.
 */
function runBundle (msg) {
  const t0 = performance.now()
  const results = []
  /** @type {ArrayBuffer[]} */
  const transfer = []
  let outBytes = 0
  let big = false
  // each task's run reads the bundle's fields and its own input (one object, not a copy per task)
  const one = { ...msg, input: new Uint8Array(0) }
  for (const [k, task] of msg.batch.entries()) {
    if (k > 0 && (big || performance.now() - t0 >= msg.cutMs || outBytes >= msg.cutBytes || (msg.stop !== undefined && Atomics.load(msg.stop, 0) === 1))) { results.push({ type: 'cut' }); continue }
    // which task runs, for the pool should this worker be stopped meanwhile (the watchdog, out of heap)
    if (msg.at !== undefined) Atomics.store(msg.at, 0, k + 1)
    const startedAt = Date.now()
    const s = performance.now()
    one.input = task.input
    let r = outcome(one)
    const wallMs = performance.now() - s
    if (r.type === 'done' && wallMs > task.timeoutMs) {
      r = { type: 'error', id: msg.id, code: 'TASK_TIMEOUT', message: `ran ${Math.round(wallMs)} ms, past its wall-time limit of ${task.timeoutMs} ms`, memoryBytes: r.memoryBytes, heapBytes: r.heapBytes }
    }
    if (r.type === 'done') { outBytes += r.output.length; transfer.push(r.output.buffer) }
    big = (r.memoryBytes ?? 0) > msg.recycleAboveBytes || (r.heapBytes ?? 0) > msg.recycleHeapBytes
    results.push({ ...r, wallMs, startedAt, finishedAt: Date.now() })
  }
  return { message: { type: 'bundle', id: msg.id, results, recycle: big }, transfer }
}

port.on('message', (msg) => {
  if (Array.isArray(msg.batch)) {
    const { message, transfer } = runBundle(msg)
    port.postMessage(message, transfer)
    return
  }
  const r = outcome(msg)
  port.postMessage(r, r.type === 'done' ? [r.output.buffer] : [])
})
