// Checking and compiling task modules, with a warm cache keyed by sha256 of the code (and the
// memory cap, which is baked into the compiled module). A module is validated against the host's limits
// (core/compute/wasm-validate.ts) before V8 compiles it, and never instantiated here.
import { createHash } from 'node:crypto'
import { capMemory, importedMemory, WASM_PAGE_BYTES, WasmFormatError } from '../../core/compute/wasm-memory.js'
import { ABI_ENV_FUNCTIONS, DEFAULT_MODULE_LIMITS, validateModule, WasmLimitError, WASI_FUNCTIONS, WASI_MODULE, type WasmModuleLimits } from '../../core/compute/wasm-validate.js'
import { ExecutorErrorCode, executorError } from './types.js'
import { WebAssemblyApi as WebAssembly, type CompiledModule } from './wasm-api.js'

export type ModuleMode = 'abi' | 'wasi'

export interface PreparedModule {
  hash: string
  module: CompiledModule
  mode: ModuleMode
  importMemory?: { module: string, field: string, minPages: number, maxPages: number }
  functions: Set<string>
}


export function sha256Hex (b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}

export function capPagesFor (memoryLimitMib: number): number {
  return Math.max(1, Math.floor(memoryLimitMib * 1024 * 1024 / WASM_PAGE_BYTES))
}

async function compile (code: Uint8Array, hash: string, capPages: number, limits: Omit<WasmModuleLimits, 'memoryCapPages'>): Promise<PreparedModule> {
  let capped: Uint8Array
  let memImport: ReturnType<typeof importedMemory>
  try {
    validateModule(code, { ...limits, memoryCapPages: capPages })
    capped = capMemory(code, capPages)
    memImport = importedMemory(code)
  } catch (err) {
    if (err instanceof WasmLimitError) throw executorError(ExecutorErrorCode.BAD_MODULE, `the module was refused before it ran: ${err.message}`, 'a task module gets one memory (capped at the task\'s memory limit), at most one bounded table, and only the host imports listed in src/compute/README.md')
    if (err instanceof WasmFormatError) throw executorError(ExecutorErrorCode.BAD_MODULE, `the task code is not a usable WebAssembly module: ${err.message}`, 'build the module for wasm32 with a toolchain such as AssemblyScript and send its bytes')
    throw err
  }
  let module: CompiledModule
  try {
    module = await WebAssembly.compile(capped)
  } catch (err) {
    throw executorError(ExecutorErrorCode.BAD_MODULE, `the task code does not compile as WebAssembly: ${(err as Error).message}`, 'check the module was built for wasm32 and sent whole', err)
  }
  let mode: ModuleMode = 'abi'
  for (const imp of WebAssembly.Module.imports(module)) {
    // validateModule allowed only these; checked again on what V8 compiled
    if (imp.module === WASI_MODULE && imp.kind === 'function' && WASI_FUNCTIONS.has(imp.name)) { mode = 'wasi'; continue }
    if (imp.module === 'env' && imp.kind === 'function' && ABI_ENV_FUNCTIONS.has(imp.name)) continue
    if (imp.kind === 'memory' && memImport !== undefined && imp.module === memImport.module && imp.name === memImport.field) continue
    throw executorError(ExecutorErrorCode.BAD_MODULE, `the module imports ${imp.module}.${imp.name} (${imp.kind}), which the host does not provide`, `a task module may import only env.{${[...ABI_ENV_FUNCTIONS].join(',')}}, WASI preview1 functions and one memory`)
  }
  const exports = WebAssembly.Module.exports(module)
  const functions = new Set(exports.filter(e => e.kind === 'function').map(e => e.name))
  const hasMemory = exports.some(e => e.kind === 'memory' && e.name === 'memory') || memImport !== undefined
  if (!hasMemory) throw executorError(ExecutorErrorCode.BAD_MODULE, 'the module neither exports "memory" nor imports one', 'export the linear memory as "memory"')
  let importMemory: PreparedModule['importMemory']
  if (memImport !== undefined) {
    if (memImport.minPages > capPages) throw executorError(ExecutorErrorCode.MEMORY_LIMIT, `the module needs ${memImport.minPages * 64} KiB of memory to start, above the cap of ${capPages * 64} KiB`)
    importMemory = { module: memImport.module, field: memImport.field, minPages: memImport.minPages, maxPages: Math.min(memImport.maxPages ?? capPages, capPages) }
  }
  return { hash, module, mode, importMemory, functions }
}

/** Bounded LRU of compiled modules; concurrent requests for one key share one compilation. */
export class ModuleCache {
  private readonly entries = new Map<string, Promise<PreparedModule>>()
  /**
   * The sha256 of code buffers hashed here already: a provider hands the executor the same buffer
   * (the module it keeps under its hash) for every task of a job, so it is hashed once, not per task.
   * The held hash only finds a module compiled already (from bytes that had it); a compile hashes
   * the bytes again: what runs always matches the hash, even from a buffer changed in place.
   */
  private readonly hashed = new WeakMap<Uint8Array, string>()
  hits = 0
  misses = 0
  constructor (private readonly maxEntries = 64, private readonly limits: Omit<WasmModuleLimits, 'memoryCapPages'> = DEFAULT_MODULE_LIMITS) {}

  get size (): number { return this.entries.size }

  /** The compiled module for this code, from the cache when warm. `code` may be empty when `hash` is cached. */
  async get (code: Uint8Array, hash: string | undefined, memoryLimitMib: number): Promise<PreparedModule> {
    const capPages = capPagesFor(memoryLimitMib)
    if (code.length > 0) {
      const held = this.hashed.get(code)
      const actual = held !== undefined && this.entries.has(`${held}:${capPages}`) ? held : sha256Hex(code)
      this.hashed.set(code, actual)
      if (hash !== undefined && hash !== actual) throw executorError(ExecutorErrorCode.BAD_MODULE, `the code's sha256 is ${actual}, not the declared ${hash}`, 'the code was corrupted or the hash is wrong; resend it')
      hash = actual
    }
    if (hash === undefined) throw executorError(ExecutorErrorCode.BAD_MODULE, 'the task carries neither code nor a code hash')
    const key = `${hash}:${capPages}`
    const hit = this.entries.get(key)
    if (hit !== undefined) {
      this.hits++
      this.entries.delete(key)
      this.entries.set(key, hit)
      return await hit
    }
    if (code.length === 0) throw executorError(ExecutorErrorCode.BAD_MODULE, `module ${hash.slice(0, 16)}… is not cached on this peer`, 'send the task again with its code inline')
    this.misses++
    const p = compile(code, hash, capPages, this.limits)
    this.entries.set(key, p)
    // A bad module is not cached, and only a good one may evict others.
    p.then(() => { while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string) }, () => this.entries.delete(key))
    return await p
  }
}
