// `npm run build:dist` (and `prepack`): compiles src/ into dist/ with tsconfig.build.json and
// copies the files the code reads beside itself at run time (wasm modules, the wasm worker,
// the generated protobuf code, the dashboard's web files: every non-TypeScript file under src/),
// so the packed `dbc` runs on production dependencies alone. Builds into dist.tmp and swaps it
// in; the freshness stamp (bin/dist-stamp.js) is taken before compiling and written last.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { snapshotSources, STAMP_FILE } from '../bin/dist-stamp.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
// one temp dir per build: two builds at once never mix their files into one dist/
const tmp = join(root, `dist.tmp-${process.pid}`)

rmSync(join(dist, STAMP_FILE), { force: true }) // from now on the old dist counts as stale
const files = snapshotSources(root)
rmSync(tmp, { recursive: true, force: true })
const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', tmp], { stdio: 'inherit' })
// --allow-type-errors: keep what tsc emitted despite type errors (tsc still writes every file);
// for trying a build while the tree is mid-edit, never for `npm pack`
if (r.status !== 0 && !(r.status === 2 && process.argv.includes('--allow-type-errors'))) {
  process.stderr.write(`build-dist: tsc failed (exit ${String(r.status)}); dist/ left as it was (stale)\n`)
  process.exit(1)
}
let copied = 0
const copyAssets = (dir, rel) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const from = join(dir, e.name)
    const to = join(tmp, rel, e.name)
    if (e.isDirectory()) copyAssets(from, join(rel, e.name))
    else if (!e.name.endsWith('.ts') && !e.name.endsWith('.md')) {
      mkdirSync(dirname(to), { recursive: true })
      cpSync(from, to)
      copied++
    }
  }
}
copyAssets(join(root, 'src'), '')
writeFileSync(join(tmp, STAMP_FILE), JSON.stringify({ builtAt: new Date().toISOString(), files }))
if (existsSync(dist)) rmSync(dist, { recursive: true, force: true })
renameSync(tmp, dist)
process.stdout.write(`build-dist: compiled src/ into dist/ (${copied} asset files copied)\n`)
