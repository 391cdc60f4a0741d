// Reads a job manifest (YAML or JSON) from disk and validates it. Errors name the field.
import { readFile } from 'node:fs/promises'
import { dirname, resolve, extname } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ManifestError } from '../errors.js'
import { validateManifest, formatManifestIssues, type Manifest } from '../core/scheduler/manifest.js'

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
      details: { issues: r.issues }
    })
  }
  return r.manifest
}

export async function loadManifestFile (path: string): Promise<LoadedManifest> {
  const full = resolve(path)
  let text: string
  try {
    text = await readFile(full, 'utf8')
  } catch (err) {
    throw new ManifestError('MANIFEST_UNREADABLE', `can not read the manifest ${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'check the path', cause: err })
  }
  return { manifest: parseManifestText(text, full), baseDir: dirname(full), path: full }
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
