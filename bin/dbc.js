#!/usr/bin/env node
// Entry point of the `dbc` command; refuses early (with a fix) on a Node older than 22.
// Which code it runs:
// - an installed package has no src/ beside dist/: it runs the compiled dist/ (no tsx, which
//   is a dev dependency);
// - in a git clone it runs src/ through tsx, so no build step is needed, unless dist/ is a
//   finished build of exactly these sources (bin/dist-stamp.js compares every source file's
//   size and mtime with what `npm run build:dist` recorded); a stale dist is never run.
//   DBC_FROM_SOURCE=1 forces the sources.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`dbc needs Node 22 or newer (this is ${process.version}).\n` +
    'Run it through npm so the pinned Node 22 is used: `npx dbc ...` or `npm exec dbc -- ...`.\n')
  process.exit(1)
}
// node:sqlite is stable enough for us but still flagged experimental in Node 22: keep that one
// notice out of every command's output.
const emitWarning = process.emitWarning
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type
  if (type === 'ExperimentalWarning' && String(warning).includes('SQLite')) return
  return emitWarning.call(process, warning, ...rest)
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const compiled = join(root, 'dist', 'cli', 'main.js')
const source = join(root, 'src', 'cli', 'main.ts')
let useDist = !existsSync(source)
if (!useDist && process.env.DBC_FROM_SOURCE !== '1' && existsSync(compiled)) {
  const { distIsFresh } = await import('./dist-stamp.js')
  useDist = distIsFresh(root)
}
if (!useDist) {
  const { register } = await import('tsx/esm/api')
  register()
}
const { runCli } = await import(pathToFileURL(useDist ? compiled : source).href)
await runCli(process.argv)
