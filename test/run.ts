// The test runner: runs every `*.test.ts` under test/ in its own Node process (uvu inside),
// a few at a time, and ends with the line `N passed, N failed` that CI reads.
//
//   npm test                      unit + integration + sim (the quick suite)
//   npm test -- --long            also test/long (the long variants)
//   npm test -- unit/core         only files whose path contains one of the filters
//   TEST_JOBS=1 npm test          run files one at a time
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpus } from 'node:os'

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

function runFile (file: string): Promise<FileResult> {
  const started = Date.now()
  const limitMs = timeoutOf(file)
  return new Promise(resolve => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings=ExperimentalWarning', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const timer = setTimeout(() => {
      output += `\n[runner] ${relative(root, file)} ran past ${limitMs} ms and was killed\n`
      child.kill('SIGKILL')
    }, limitMs)
    child.on('close', code => {
      clearTimeout(timer)
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
    })
  })
}

async function main (): Promise<void> {
  let files = findTests(join(root, 'test'))
  if (filters.length > 0) files = files.filter(f => filters.some(x => relative(root, f).includes(x)))
  if (files.length === 0) {
    console.log('no test files matched')
    console.log('0 passed, 1 failed')
    process.exit(1)
  }
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
  const passed = results.reduce((a, r) => a + r.passed, 0)
  const failed = results.reduce((a, r) => a + r.failed, 0)
  const skipped = results.reduce((a, r) => a + r.skipped, 0)
  console.log(`\n${files.length} files in ${((Date.now() - t0) / 1000).toFixed(1)}s${skipped > 0 ? `, ${skipped} skipped` : ''}`)
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed > 0 ? 1 : 0)
}

await main()
