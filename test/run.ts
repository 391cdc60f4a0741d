// The test runner: runs every `*.test.ts` under test/ in its own Node process (uvu inside),
// a few at a time, and ends with the line `N passed, N failed` that CI reads.
//
//   npm test                      unit + integration + sim (the quick suite)
//   npm test -- --long            also test/long (the long variants)
//   npm test -- unit/core         only files whose path contains one of the filters
//   TEST_JOBS=1 npm test          run files one at a time
//
// Files start longest first (seconds from test/durations.txt, a past full run's times; a file not
// listed counts as UNKNOWN_S), so the lanes end together instead of one long file starting last.
// A full run writes this run's times to test-output/durations.txt: copy it over test/durations.txt
// to refresh the order. A full run also builds dist/ beside the first files when it is not a
// fresh build of these sources (TEST_DIST=0: never; TEST_DIST=1: also for a filtered run): every
// `dbc` daemon and CLI process a test starts then loads compiled JavaScript instead of compiling
// src/ through tsx (about 1.3 s less CPU a daemon start); bin/dbc.js runs dist/ only while it is
// exactly these sources' build, so a file that starts before the build ends, or after an edit, runs src/.
// Processes a file leaves running (its detached daemons, above all when it ran past its limit and
// was killed before its cleanup) are killed once it ends and named in the log (test/run-leftovers.ts);
// the runner's own SIGINT/SIGTERM kills every process its files started.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { cpus } from 'node:os'
import { TOKEN_VAR, killAllOnSignal, killLeftovers } from './run-leftovers.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const long = args.includes('--long')
const filters = args.filter(a => !a.startsWith('--'))
const jobs = Number(process.env.TEST_JOBS ?? Math.max(1, Math.min(2, cpus().length)))
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? (long ? 1_800_000 : 300_000))

function findTests (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) {
      if (name === 'long' && !long) continue
      if (name === 'fixtures' || name === 'node_modules') continue
      out.push(...findTests(p))
    } else if (name.endsWith('.test.ts')) {
      out.push(p)
    }
  }
  return out
}

const UNKNOWN_S = 30

/** Past run times by path relative to the root (lines `125.9s test/sim/calibration.test.ts`). */
function pastDurations (): Map<string, number> {
  const out = new Map<string, number>()
  let text = ''
  try { text = readFileSync(join(root, 'test', 'durations.txt'), 'utf8') } catch { return out }
  for (const line of text.split('\n')) {
    const m = line.match(/^\s*([\d.]+)s\s+(\S+)\s*$/)
    if (m != null) out.set(m[2], Number(m[1]))
  }
  return out
}

/** Builds dist/ in a child process when it is stale; resolves with a line for the log. */
async function buildDist (): Promise<string> {
  // plain JavaScript beside bin/dbc.js (no types: it runs before any build)
  const { distIsFresh } = await import(pathToFileURL(join(root, 'bin', 'dist-stamp.js')).href) as { distIsFresh: (root: string) => boolean }
  if (distIsFresh(root)) return 'dist/ is a fresh build of these sources: daemons run it'
  const t0 = Date.now()
  return await new Promise(resolve => {
    const child = spawn(process.execPath, [join(root, 'scripts', 'build-dist.mjs')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4000) })
    child.stderr.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4000) })
    child.on('close', code => {
      const s = ((Date.now() - t0) / 1000).toFixed(1)
      resolve(code === 0 ? `dist/ built in ${s}s: daemons started from now on run it` : `dist/ build failed (exit ${String(code)}) after ${s}s: daemons run src/ through tsx\n${out}`)
    })
  })
}

interface FileResult { file: string, passed: number, failed: number, skipped: number, ms: number, output: string, code: number | null }

/**
 * A file may ask for more time than the default with a line `// test-timeout-s: N` near its top
 * (real daemons in namespaces on a loaded 2-core box); capped at 15 minutes, never below the default.
 */
function timeoutOf (file: string): number {
  const m = readFileSync(file, 'utf8').slice(0, 4096).match(/^\/\/ test-timeout-s: (\d+)\s*$/m)
  if (m == null || process.env.TEST_FILE_TIMEOUT_MS !== undefined) return fileTimeoutMs
  return Math.max(fileTimeoutMs, Math.min(900_000, Number(m[1]) * 1000))
}

let filesStarted = 0

function runFile (file: string): Promise<FileResult> {
  const started = Date.now()
  const limitMs = timeoutOf(file)
  const token = `${process.pid}.${++filesStarted}`
  return new Promise(resolve => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings=ExperimentalWarning', file], {
      cwd: root,
      // DEBUG_COLORS: libp2p's logger (weald) otherwise asks isatty() for every logger it makes,
      // one per connection and stream (3 s of the calibration file's 120 s of CPU)
      env: { DEBUG_COLORS: 'no', ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', [TOKEN_VAR]: token },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const timer = setTimeout(() => {
      output += `\n[runner] ${relative(root, file)} ran past ${limitMs} ms and was killed\n`
      child.kill('SIGKILL')
    }, limitMs)
    child.on('close', code => { void (async () => {
      clearTimeout(timer)
      // what the file started and did not stop (a killed file's daemons above all) ends here
      const leftovers = await killLeftovers(token)
      if (leftovers !== undefined) { output += `\n${leftovers}\n`; console.log(leftovers) }
      // uvu prints "Total: N", "Passed: N", "Skipped: N" at the end of a file's run.
      const num = (label: string): number => {
        const m = output.match(new RegExp(`${label}:\\s+(\\d+)`, 'g'))
        if (m == null) return 0
        return m.map(s => Number(s.replace(/\D+/g, ''))).reduce((a, b) => a + b, 0)
      }
      const total = num('Total')
      const passed = num('Passed')
      const skipped = num('Skipped')
      let failed = Math.max(0, total - passed - skipped)
      // A file that crashed, timed out or exited non-zero without reporting a failure
      // still counts as one failure: nothing it did can be trusted.
      if (code !== 0 && failed === 0) failed = 1
      if (total === 0 && code === 0) failed = 1 // a test file that ran no test is a defect
      resolve({ file, passed, failed, skipped, ms: Date.now() - started, output, code })
    })() })
  })
}

async function main (): Promise<void> {
  killAllOnSignal(`${process.pid}.`)
  let files = findTests(join(root, 'test'))
  if (filters.length > 0) files = files.filter(f => filters.some(x => relative(root, f).includes(x)))
  if (files.length === 0) {
    console.log('no test files matched')
    console.log('0 passed, 1 failed')
    process.exit(1)
  }
  const past = pastDurations()
  const weight = (f: string): number => past.get(relative(root, f)) ?? UNKNOWN_S
  files.sort((a, b) => weight(b) - weight(a)) // stable: equal weights keep the path order
  const full = filters.length === 0
  const dist = process.env.TEST_DIST === '1' || (full && process.env.TEST_DIST !== '0')
  const distBuilt = dist ? buildDist().then(line => { console.log(`[runner] ${line}`) }) : Promise.resolve()
  const results: FileResult[] = []
  let next = 0
  const t0 = Date.now()
  async function worker (): Promise<void> {
    while (next < files.length) {
      const file = files[next++]
      const r = await runFile(file)
      results.push(r)
      const mark = r.failed > 0 ? 'FAIL' : 'ok  '
      console.log(`${mark} ${relative(root, file).padEnd(60)} ${String(r.passed).padStart(4)} passed ${String(r.failed).padStart(3)} failed  ${(r.ms / 1000).toFixed(1)}s`)
      if (r.failed > 0) {
        console.log(r.output.split('\n').map(l => '     | ' + l).join('\n'))
      }
    }
  }
  await Promise.all(Array.from({ length: jobs }, async () => await worker()))
  await distBuilt
  if (full && !long) {
    const out = join(root, 'test-output')
    if (!existsSync(out)) mkdirSync(out, { recursive: true })
    const lines = [...results].sort((a, b) => b.ms - a.ms).map(r => `${(r.ms / 1000).toFixed(1)}s ${relative(root, r.file)}`)
    let header: string[] = []
    try { header = readFileSync(join(root, 'test', 'durations.txt'), 'utf8').split('\n').filter(l => l.startsWith('#')) } catch {}
    writeFileSync(join(out, 'durations.txt'), [...header, ...lines].join('\n') + '\n')
  }
  const passed = results.reduce((a, r) => a + r.passed, 0)
  const failed = results.reduce((a, r) => a + r.failed, 0)
  const skipped = results.reduce((a, r) => a + r.skipped, 0)
  console.log(`\n${files.length} files in ${((Date.now() - t0) / 1000).toFixed(1)}s${skipped > 0 ? `, ${skipped} skipped` : ''}`)
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed > 0 ? 1 : 0)
}

await main()
