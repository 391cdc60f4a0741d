// Reads a job manifest (YAML or JSON) from disk and validates it, with the wasm module it names: a module
// that providers refuse at validation never ships (they charge whoever sends one). Errors name the field.
import { readFile } from 'node:fs/promises'
import { dirname, resolve, extname } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ManifestError } from '../errors.js'
import { validateManifest, formatManifestIssues, type Manifest } from '../core/scheduler/manifest.js'
import { WasmFormatError } from '../core/compute/wasm-memory.js'
import { DEFAULT_MODULE_LIMITS, validateModule, WasmLimitError } from '../core/compute/wasm-validate.js'
import { capPagesFor } from '../compute/executors/wasm-modules.js'
import { encodeContainerCode } from '../core/compute/container-code.js'

export interface LoadedManifest {
  manifest: Manifest
  /** Folder the manifest's relative paths are resolved against. */
  baseDir: string
  path: string
}

/** Parses YAML or JSON text (JSON is YAML too; `.json` files get JSON's stricter errors). */
export function parseManifestText (text: string, name = 'manifest'): Manifest {
  let raw: unknown
  try {
    raw = extname(name) === '.json' ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new ManifestError('MANIFEST_SYNTAX', `${name}: not valid ${extname(name) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { hint: 'fix the syntax and submit again', cause: err })
  }
  const r = validateManifest(raw)
  if (!r.ok) {
    throw new ManifestError('MANIFEST_INVALID', `${name} is not a valid job manifest:\n${formatManifestIssues(r.issues)}`, {
      hint: 'fix the fields named above (see docs for the manifest format)',
      data: { issues: r.issues }
    })
  }
  return r.manifest
}

/**
 * Why a provider would refuse `code` before running it as a task capped at `memoryMib` (a WasmLimitError
 * when it asks for too much, a WasmFormatError when it is no module), or undefined: the pure validator
 * every provider runs (src/compute/executors/wasm-modules.ts), with the default limits.
 */
export function moduleRefusal (code: Uint8Array, memoryMib: number): WasmFormatError | undefined {
  try {
    validateModule(code, { ...DEFAULT_MODULE_LIMITS, memoryCapPages: capPagesFor(memoryMib) })
    return undefined
  } catch (err) {
    if (err instanceof WasmFormatError) return err
    throw err
  }
}

const wasmValidate = (globalThis as unknown as { WebAssembly: { validate: (b: Uint8Array) => boolean } }).WebAssembly.validate

/**
 * Refuses a wasm job whose module providers would refuse at validation (or that V8 does not accept
 * as WebAssembly), naming the field: `code.wasm: ...`. Other executors' code is not checked here.
 */
export function checkJobCode (m: Manifest, code: Uint8Array): void {
  if (m.executor !== 'wasm' || m.code.wasm === undefined) return
  const field = `code.wasm (${m.code.wasm})`
  const why = moduleRefusal(code, m.resources.memoryMib)
  if (why !== undefined) {
    throw new ManifestError('MANIFEST_BAD_MODULE', `${field}: providers refuse this module before it runs: ${why.message}`, {
      hint: why instanceof WasmLimitError
        ? 'a task module has one memory that fits resources.memoryMib, at most one bounded table, and only the imports listed in src/compute/README.md'
        : 'build the module for wasm32 (e.g. with AssemblyScript) and name its .wasm file in code.wasm'
    })
  }
  if (!wasmValidate(code)) {
    throw new ManifestError('MANIFEST_BAD_MODULE', `${field}: not a valid WebAssembly module (it does not compile)`, { hint: 'rebuild the module for wasm32 and check the file is whole' })
  }
}

/** Reads the module a wasm manifest names (relative to `baseDir`) and checks it with checkJobCode. */
export async function loadJobCode (m: Manifest, baseDir: string): Promise<Uint8Array> {
  if (m.code.image !== undefined) return encodeContainerCode({ image: m.code.image, network: m.resources.network })
  if (m.code.wasm === undefined) return new TextEncoder().encode(JSON.stringify(m.code.command ?? []))
  const path = resolve(baseDir, m.code.wasm)
  let code: Uint8Array
  try {
    code = new Uint8Array(await readFile(path))
  } catch (err) {
    throw new ManifestError('MANIFEST_UNREADABLE', `code.wasm: can not read the module ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'check the path (relative paths are resolved against the manifest\'s folder)', cause: err })
  }
  checkJobCode(m, code)
  return code
}

/** Reads and validates a manifest and (with `checkCode`, the default) the wasm module it names. */
export async function loadManifestFile (path: string, opts: { checkCode?: boolean } = {}): Promise<LoadedManifest> {
  const full = resolve(path)
  let text: string
  try {
    text = await readFile(full, 'utf8')
  } catch (err) {
    throw new ManifestError('MANIFEST_UNREADABLE', `can not read the manifest ${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'check the path', cause: err })
  }
  const manifest = parseManifestText(text, full)
  if (opts.checkCode ?? true) await loadJobCode(manifest, dirname(full))
  return { manifest, baseDir: dirname(full), path: full }
}

/** Stable bytes of a manifest, for hashing and signing (keys sorted). */
export function canonicalManifestBytes (m: Manifest): Uint8Array {
  return new TextEncoder().encode(canonicalJson(m))
}

export function canonicalJson (v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().filter(k => (v as Record<string, unknown>)[k] !== undefined).map(k => JSON.stringify(k) + ':' + canonicalJson((v as Record<string, unknown>)[k])).join(',') + '}'
  }
  return JSON.stringify(v) ?? 'null'
}
