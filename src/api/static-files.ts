// Serving the dashboard's files: a URL path maps to a file under one folder (or to a named
// extra file, e.g. a vendored library in node_modules), never outside it.
import { realpathSync, statSync } from 'node:fs'
import { extname, resolve, sep } from 'node:path'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2'
}

export function contentTypeOf (file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream'
}

/** Headers on every dashboard answer: nothing cached, no inline script, no framing, no sniffing. */
export const PAGE_HEADERS: Record<string, string> = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer'
}

/** Shown for a missing, used or expired login link and for a page asked without a session. */
export const LOGIN_AGAIN_HTML = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>dbc dashboard: sign in</title></head>' +
  '<body><h1>Not signed in</h1><p>This login link is unknown, already used or expired, or your session ended.</p>' +
  '<p>Run <code>dbc dashboard</code> on the node\'s machine for a new link (it is valid for 5 minutes and works once).</p></body></html>\n'

export interface StaticMount {
  /** URL prefix without a trailing slash, e.g. '/dashboard' */
  prefix: string
  /** real path of the folder served */
  dir: string
  /** full URL path -> absolute file */
  extra: Map<string, string>
}

export function mount (prefix: string, dir: string, extra: Record<string, string> = {}): StaticMount {
  const p = '/' + prefix.split('/').filter(Boolean).join('/')
  return { prefix: p, dir: realpathSync(dir), extra: new Map(Object.entries(extra)) }
}

/** True when the URL path is this mount's prefix or under it. */
export function underMount (m: StaticMount, pathname: string): boolean {
  return pathname === m.prefix || pathname.startsWith(m.prefix + '/')
}

/**
 * The file a URL path names, or undefined (not found, a folder, or outside the mount: a
 * '..' segment, an encoded slash or NUL, or a symlink leading out all count as not found).
 */
export function resolveStatic (m: StaticMount, pathname: string): string | undefined {
  const named = m.extra.get(pathname)
  if (named !== undefined) return isFile(named) ? named : undefined
  if (!underMount(m, pathname)) return undefined
  let rest = pathname.slice(m.prefix.length)
  if (rest === '' || rest.endsWith('/')) rest += 'index.html'
  const segments = rest.split('/').filter(Boolean)
  let decoded: string[]
  try { decoded = segments.map(s => decodeURIComponent(s)) } catch { return undefined }
  if (decoded.some(s => s === '..' || s === '.' || s.includes('/') || s.includes('\\') || s.includes('\0'))) return undefined
  const file = resolve(m.dir, ...decoded)
  if (!file.startsWith(m.dir + sep)) return undefined
  let real: string
  try { real = realpathSync(file) } catch { return undefined }
  if (!real.startsWith(m.dir + sep) || !isFile(real)) return undefined
  return real
}

function isFile (f: string): boolean {
  try { return statSync(f).isFile() } catch { return false }
}
