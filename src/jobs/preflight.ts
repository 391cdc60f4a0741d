// What `dbc job submit` checks on the submitter's machine before anything ships: every file the
// manifest names exists and is readable, the wasm module passes the providers' own validator and
// V8, and it exports the entry the tasks will call (the executor's rule: a WASI module starts at
// `_start`, any other module at `entry`, default "main"). Each problem names the manifest field and
// the file, and all of them are reported at once: one round of fixes, not one per submit.
import { stat, readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { ManifestError } from '../errors.js'
import type { Manifest } from '../core/scheduler/manifest.js'
import { checkJobCode } from './manifest-file.js'
import { WASI_MODULE } from '../core/compute/wasm-validate.js'
import { WebAssemblyApi as WebAssembly } from '../compute/executors/wasm-api.js'

export interface PreflightIssue {
  /** the manifest field, e.g. `code.wasm`, `entry`, `inputs.files.paths[2]` */
  field: string
  code: 'FILE_MISSING' | 'FILE_UNREADABLE' | 'NOT_A_FILE' | 'BAD_MODULE' | 'NO_ENTRY'
  message: string
}

export interface PreflightResult {
  issues: PreflightIssue[]
  /** the wasm module's bytes, when the manifest names one and it could be read */
  code?: Uint8Array
}

/** Checks a parsed manifest against the files beside it; never throws for a problem it finds. */
export async function preflightJob (m: Manifest, baseDir: string): Promise<PreflightResult> {
  const issues: PreflightIssue[] = []
  let code: Uint8Array | undefined
  if (m.code.wasm !== undefined) {
    code = await readNamedFile('code.wasm', m.code.wasm, baseDir, issues)
    if (code !== undefined) {
      const bad = moduleIssue(m, code)
      if (bad !== undefined) issues.push(bad)
      else {
        const entry = await entryIssue(m, code)
        if (entry !== undefined) issues.push(entry)
      }
    }
  }
  const files = m.inputs.files
  if (files?.path !== undefined) {
    const bytes = await checkNamedFile('inputs.files.path', files.path, baseDir, issues)
    if (bytes === 0) issues.push({ field: 'inputs.files.path', code: 'NOT_A_FILE', message: `inputs.files.path (${files.path}): the file is empty, so it splits into no tasks` })
  }
  for (const [i, p] of (files?.paths ?? []).entries()) await checkNamedFile(`inputs.files.paths[${i}]`, p, baseDir, issues)
  return code === undefined ? { issues } : { issues, code }
}

/** preflightJob, throwing one ManifestError that lists every problem (code of the first). */
export async function assertPreflight (m: Manifest, baseDir: string, manifestPath = 'the manifest'): Promise<Uint8Array | undefined> {
  const r = await preflightJob(m, baseDir)
  if (r.issues.length === 0) return r.code
  const first = r.issues[0]
  throw new ManifestError(`MANIFEST_${first.code}`, `${manifestPath} can not be submitted:\n${r.issues.map(x => `  ${x.message}`).join('\n')}`, {
    hint: first.code === 'NO_ENTRY'
      ? 'set `entry:` to a function the module exports (a WASI program: entry: _start)'
      : first.code === 'BAD_MODULE'
        ? 'build the module for wasm32 (e.g. with AssemblyScript) and name its .wasm file in code.wasm'
        : `paths in a manifest are relative to its folder (${baseDir})`,
    data: { issues: r.issues }
  })
}

async function checkNamedFile (field: string, path: string, baseDir: string, issues: PreflightIssue[]): Promise<number | undefined> {
  const full = resolve(baseDir, path)
  try {
    const s = await stat(full)
    if (!s.isFile()) { issues.push({ field, code: 'NOT_A_FILE', message: `${field} (${path}): ${full} is not a file` }); return undefined }
    return s.size
  } catch (err) {
    issues.push(fileIssue(field, path, full, err))
    return undefined
  }
}

async function readNamedFile (field: string, path: string, baseDir: string, issues: PreflightIssue[]): Promise<Uint8Array | undefined> {
  if (await checkNamedFile(field, path, baseDir, issues) === undefined) return undefined
  const full = resolve(baseDir, path)
  try {
    return new Uint8Array(await readFile(full))
  } catch (err) {
    issues.push(fileIssue(field, path, full, err))
    return undefined
  }
}

function fileIssue (field: string, path: string, full: string, err: unknown): PreflightIssue {
  const errno = (err as NodeJS.ErrnoException).code
  if (errno === 'ENOENT' || errno === 'ENOTDIR') return { field, code: 'FILE_MISSING', message: `${field} (${path}): no such file ${full}` }
  return { field, code: 'FILE_UNREADABLE', message: `${field} (${path}): ${full} can not be read (${errno ?? (err as Error).message})` }
}

/** The providers' own check (validator limits, then V8), as a field-named issue. */
function moduleIssue (m: Manifest, code: Uint8Array): PreflightIssue | undefined {
  try {
    checkJobCode(m, code)
    return undefined
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err
    return { field: 'code.wasm', code: 'BAD_MODULE', message: err.message }
  }
}

/** The entry the executor will call, as compute/executors/wasm.ts picks it. */
async function entryIssue (m: Manifest, code: Uint8Array): Promise<PreflightIssue | undefined> {
  let module
  try {
    module = await WebAssembly.compile(code)
  } catch (err) {
    return { field: 'code.wasm', code: 'BAD_MODULE', message: `code.wasm (${m.code.wasm ?? ''}): does not compile as WebAssembly: ${(err as Error).message}` }
  }
  const wasi = WebAssembly.Module.imports(module).some(i => i.module === WASI_MODULE && i.kind === 'function')
  const functions = WebAssembly.Module.exports(module).filter(e => e.kind === 'function').map(e => e.name)
  const exported = functions.length > 0 ? functions.join(', ') : 'no functions'
  const entry = m.entry === '' ? 'run' : m.entry
  const where = `the module ${m.code.wasm ?? ''}`
  const named = `entry "${entry}"${m.entry === 'main' ? ' (the default when the manifest names none)' : ''}`
  if (wasi) {
    if (!functions.includes('_start')) return { field: 'entry', code: 'NO_ENTRY', message: `entry: ${where} imports WASI but exports no "_start" (it exports: ${exported})` }
    if (entry !== '_start') return { field: 'entry', code: 'NO_ENTRY', message: `${named}: ${where} is a WASI program, which providers start only at "_start"` }
    return undefined
  }
  if (!functions.includes(entry)) return { field: 'entry', code: 'NO_ENTRY', message: `${named}: ${where} exports no such function (it exports: ${exported})` }
  return undefined
}
