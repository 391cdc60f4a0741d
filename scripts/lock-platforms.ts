// Completes package-lock.json with the other-platform builds of packages that ship native
// binaries as optional per-platform packages (msgpackr-extract, @foundry-rs/anvil).
//
// Why: the npm registry this project is developed against serves only the linux-x64 builds, so
// `npm install` leaves the others out of the lock, and `npm ci` then refuses the lock as out of
// sync ("Missing: ... from lock file"). The entries added here are what npm itself writes for a
// build of another platform: version, os, cpu, optional. npm skips them on non-matching
// platforms without fetching them. Run after any `npm install` that rewrites the lock:
//   npx tsx scripts/lock-platforms.ts
import { readFileSync, writeFileSync } from 'node:fs'

const file = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(file, 'utf8')) as { packages: Record<string, Record<string, any>> }

const OS: Record<string, string> = { darwin: 'darwin', linux: 'linux', win32: 'win32', freebsd: 'freebsd' }
const CPU: Record<string, string> = { x64: 'x64', amd64: 'x64', arm64: 'arm64', arm: 'arm', ia32: 'ia32' }

function platformOf (name: string): { os: string, cpu: string } | undefined {
  const m = name.match(/-(darwin|linux|win32|freebsd)-(x64|amd64|arm64|arm|ia32)(?:-[a-z]+)?$/)
  if (m == null) return undefined
  return { os: OS[m[1]], cpu: CPU[m[2]] }
}

let added = 0
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [dep, range] of Object.entries((pkg.optionalDependencies ?? {}) as Record<string, string>)) {
    const plat = platformOf(dep)
    if (plat === undefined) continue
    const base = path === '' ? '' : path + '/'
    if (lock.packages[`${base}node_modules/${dep}`] !== undefined || lock.packages[`node_modules/${dep}`] !== undefined) continue
    const version = range.replace(/^[\^~=]/, '')
    lock.packages[`node_modules/${dep}`] = { version, cpu: [plat.cpu], license: pkg.license ?? 'MIT', optional: true, os: [plat.os] }
    added++
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)))
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n')
console.log(`package-lock.json: added ${added} other-platform entr${added === 1 ? 'y' : 'ies'}`)
