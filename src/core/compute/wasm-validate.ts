// Checks a task module against the host's limits before it is compiled or instantiated: everything a module
// declares that the host must allocate (memories, tables, globals, data, functions, exports) is counted
// from the binary and bounded, and only the task ABI's imports are allowed. V8 validates the rest when it
// compiles. Pure: bytes in, a summary or a WasmLimitError naming what was over and the limit.
import { readU32, readLimits, sections, skipName, WasmFormatError, WASM_PAGE_BYTES, type Cursor } from './wasm-memory.js'

/** A module refused by a host limit (not malformed: it asks for more than a task may have). */
export class WasmLimitError extends WasmFormatError {
  override name = 'WasmLimitError'
}

export interface WasmModuleLimits {
  /** Largest module accepted, bytes. */
  maxModuleBytes: number
  /** Memories, declared + imported. One, so the slot's cap cannot be multiplied by declaring more. */
  maxMemories: number
  /** The slot's memory cap in pages (a memory's maximum is rewritten down to it; see wasm-memory.ts). */
  memoryCapPages: number
  /** Tables, declared + imported. */
  maxTables: number
  /** Elements one table may ever hold (its declared maximum, which is required). */
  maxTableElements: number
  maxGlobals: number
  maxFunctions: number
  maxExports: number
  maxDataSegments: number
  maxElementSegments: number
}

// Why these numbers (what an honest module needs, and what a hostile one could cost):
// - 8 MiB of module: a large C/Rust program is a few MiB; V8's compiled code is a few times the module size.
// - 1 memory: wasm32 toolchains (AssemblyScript, Rust, C, Go) emit exactly one; multi-memory is opt-in.
// - 1 table of at most 100,000 elements: toolchains emit one function table sized to the functions whose
//   address is taken (min = max); V8 holds 8 bytes per element, so 100k elements is 800 KB.
// - 100,000 functions, 1,000 exports, 1,000 globals, 1,000 data and element segments: well above what
//   compilers emit (a few globals, a handful of segments), far below V8's own limits (1M functions, 1M globals).
export const DEFAULT_MODULE_LIMITS: Omit<WasmModuleLimits, 'memoryCapPages'> = {
  maxModuleBytes: 8 * 1024 * 1024,
  maxMemories: 1,
  maxTables: 1,
  maxTableElements: 100_000,
  maxGlobals: 1_000,
  maxFunctions: 100_000,
  maxExports: 1_000,
  maxDataSegments: 1_000,
  maxElementSegments: 1_000
}

/** The host functions of the task ABI (src/compute/README.md). */
export const ABI_ENV_FUNCTIONS: ReadonlySet<string> = new Set(['abort', 'progress', 'trace', 'seed'])
export const WASI_MODULE = 'wasi_snapshot_preview1'
/** WASI preview1 functions (all of the snapshot; the in-memory WASI answers each, mostly with an error). */
export const WASI_FUNCTIONS: ReadonlySet<string> = new Set([
  'args_get', 'args_sizes_get', 'environ_get', 'environ_sizes_get', 'clock_res_get', 'clock_time_get',
  'fd_advise', 'fd_allocate', 'fd_close', 'fd_datasync', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_fdstat_set_rights',
  'fd_filestat_get', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_pread', 'fd_prestat_get', 'fd_prestat_dir_name',
  'fd_pwrite', 'fd_read', 'fd_readdir', 'fd_renumber', 'fd_seek', 'fd_sync', 'fd_tell', 'fd_write',
  'path_create_directory', 'path_filestat_get', 'path_filestat_set_times', 'path_link', 'path_open', 'path_readlink',
  'path_remove_directory', 'path_rename', 'path_symlink', 'path_unlink_file', 'poll_oneoff', 'proc_exit', 'proc_raise',
  'sched_yield', 'random_get', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown'
])

export interface ModuleSummary {
  /** 'wasi' when it imports any WASI function, else 'abi'. */
  mode: 'abi' | 'wasi'
  imports: Array<{ module: string, name: string, kind: 'function' | 'table' | 'memory' | 'global' | 'tag' }>
  memories: number
  tables: number
}

const KINDS = ['function', 'table', 'memory', 'global', 'tag'] as const
const SECTION = { type: 1, import: 2, function: 3, table: 4, memory: 5, global: 6, export: 7, element: 9, data: 11 }

const kib = (bytes: number): string => bytes >= 1048576 ? `${(bytes / 1048576).toFixed(bytes % 1048576 === 0 ? 0 : 1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`

function over (what: string, actual: number | string, limit: number | string): never {
  throw new WasmLimitError(`${what}: ${actual}, above the limit of ${limit}`)
}

function importAllowed (module: string, name: string, kind: number): boolean {
  if (kind === 0) return (module === 'env' && ABI_ENV_FUNCTIONS.has(name)) || (module === WASI_MODULE && WASI_FUNCTIONS.has(name))
  return kind === 2 // one memory (counted with the declared ones below)
}

/** Skips a reference type (0x70 funcref, 0x6f externref, or 0x63/0x64 followed by a heap type). */
function skipRefType (b: Uint8Array, c: Cursor): void {
  const t = b[c.pos++]
  if (t === 0x63 || t === 0x64) { while ((b[c.pos++] & 0x80) !== 0) if (c.pos >= b.length) throw new WasmFormatError('unexpected end of module') }
}

function tableLimits (b: Uint8Array, c: Cursor, index: number, limits: WasmModuleLimits): void {
  if (b[c.pos] === 0x40) throw new WasmLimitError(`table ${index} has an initializer expression, which the host does not accept`)
  skipRefType(b, c)
  const flags = b[c.pos++]
  if ((flags & ~0x01) !== 0) throw new WasmLimitError(`table ${index} uses limits flags 0x${flags.toString(16)} (64-bit or shared tables), which the host does not accept`)
  const min = readU32(b, c)
  const max = (flags & 0x01) !== 0 ? readU32(b, c) : undefined
  if (max === undefined) throw new WasmLimitError(`table ${index} declares no maximum size; declare one of at most ${limits.maxTableElements} elements`)
  if (min > limits.maxTableElements) over(`table ${index} starts with too many elements`, min, limits.maxTableElements)
  if (max > limits.maxTableElements) over(`table ${index} may grow to too many elements`, max, limits.maxTableElements)
}

function count (b: Uint8Array, secs: ReturnType<typeof sections>, id: number): number {
  const s = secs.find(x => x.id === id)
  return s === undefined ? 0 : readU32(b, { pos: s.contentStart })
}

/**
 * Checks `b` against `limits`; returns what the host needs to know to run it. Throws WasmLimitError when
 * the module asks for more than the limits allow, WasmFormatError when it cannot be read.
 */
export function validateModule (b: Uint8Array, limits: WasmModuleLimits): ModuleSummary {
  if (b.length > limits.maxModuleBytes) over('the module is too large', kib(b.length), kib(limits.maxModuleBytes))
  const secs = sections(b)
  for (const id of new Set(secs.map(s => s.id))) {
    if (id !== 0 && secs.filter(s => s.id === id).length > 1) throw new WasmFormatError(`section ${id} appears more than once`)
  }
  const imports: ModuleSummary['imports'] = []
  let importedFunctions = 0
  let memories = 0
  let tables = 0
  const imp = secs.find(s => s.id === SECTION.import)
  if (imp !== undefined) {
    const c: Cursor = { pos: imp.contentStart }
    const n = readU32(b, c)
    for (let i = 0; i < n; i++) {
      const module = skipName(b, c)
      const name = skipName(b, c)
      const kind = b[c.pos++]
      const kindName = KINDS[kind]
      if (kindName === undefined) throw new WasmFormatError(`unknown import kind ${kind}`)
      if (!importAllowed(module, name, kind)) {
        throw new WasmLimitError(`the module imports ${module}.${name} (${kindName}), which is outside the task ABI; a task module may import only env.{${[...ABI_ENV_FUNCTIONS].join(',')}}, WASI preview1 functions and one memory`)
      }
      imports.push({ module, name, kind: kindName })
      if (kind === 0) { readU32(b, c); importedFunctions++ } else if (kind === 2) { readLimits(b, c); memories++ }
    }
  }
  const mem = secs.find(s => s.id === SECTION.memory)
  if (mem !== undefined) {
    const c: Cursor = { pos: mem.contentStart }
    const n = readU32(b, c)
    memories += n
    if (memories > limits.maxMemories) over('the module declares too many memories (declared + imported)', memories, limits.maxMemories)
    for (let i = 0; i < n; i++) {
      const l = readLimits(b, c)
      if (l.minPages > limits.memoryCapPages) over(`memory ${i} needs too much memory to start`, kib(l.minPages * WASM_PAGE_BYTES), `the task's cap of ${kib(limits.memoryCapPages * WASM_PAGE_BYTES)}`)
    }
  }
  if (memories > limits.maxMemories) over('the module declares too many memories (declared + imported)', memories, limits.maxMemories)
  const tab = secs.find(s => s.id === SECTION.table)
  if (tab !== undefined) {
    const c: Cursor = { pos: tab.contentStart }
    const n = readU32(b, c)
    tables += n
    if (tables > limits.maxTables) over('the module declares too many tables', tables, limits.maxTables)
    for (let i = 0; i < n; i++) tableLimits(b, c, i, limits)
  }
  const functions = importedFunctions + count(b, secs, SECTION.function)
  if (functions > limits.maxFunctions) over('the module has too many functions', functions, limits.maxFunctions)
  const globals = count(b, secs, SECTION.global)
  if (globals > limits.maxGlobals) over('the module declares too many globals', globals, limits.maxGlobals)
  const exports = count(b, secs, SECTION.export)
  if (exports > limits.maxExports) over('the module has too many exports', exports, limits.maxExports)
  const elems = count(b, secs, SECTION.element)
  if (elems > limits.maxElementSegments) over('the module has too many element segments', elems, limits.maxElementSegments)
  const data = secs.find(s => s.id === SECTION.data)
  if (data !== undefined) {
    const segments = readU32(b, { pos: data.contentStart })
    if (segments > limits.maxDataSegments) over('the module has too many data segments', segments, limits.maxDataSegments)
    // The section's size bounds the bytes its segments hold; data cannot usefully exceed the memory it fills.
    const bytes = data.end - data.contentStart
    const cap = limits.memoryCapPages * WASM_PAGE_BYTES
    if (bytes > cap) over('the module\'s data segments are too large', kib(bytes), `the task's memory cap of ${kib(cap)}`)
  }
  const mode = imports.some(i => i.module === WASI_MODULE) ? 'wasi' : 'abi'
  return { mode, imports, memories, tables }
}
