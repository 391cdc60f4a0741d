// How fast `dbc` answers: median wall time of N runs each of a bare `node -e ''` (the floor),
// `dbc --help`, `dbc id` and `dbc node status` against a running node, from the packed package
// installed with production dependencies only (compiled dist/) and from the clone (tsx).
// Goal (issue 16): `dbc node status` under 300 ms installed. Wall time suffers on a shared, loaded
// machine; the CPU time each run used (user + system, read in the child at exit) suffers less, so
// both are reported. DBC_BENCH_INSTALLED=<path of an installed bin/dbc.js> skips packing.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { metric, summarize, type BenchModule } from './lib.js'
import { packAndInstall, repoRoot } from '../scripts/pack-install.js'

// preloaded in every run (the bare baseline too): writes the process's CPU time to fd 3 at exit
const CPU_PROBE = 'data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>{const u=process.cpuUsage();writeSync(3,String((u.user+u.system)/1000))})'

interface Runs { wall: number[], cpu: number[] }

function timeRuns (n: number, args: string[], env: NodeJS.ProcessEnv = {}): Runs {
  const out: Runs = { wall: [], cpu: [] }
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const r = spawnSync(process.execPath, ['--import', CPU_PROBE, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })
    const ms = performance.now() - t
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${String(r.status)}: ${r.stderr}`)
    out.wall.push(ms)
    out.cpu.push(Number(r.output[3]?.toString() ?? NaN))
  }
  return out
}

export const run: BenchModule['run'] = async ({ quick }) => {
  const n = quick ? 5 : 15
  const reuse = process.env.DBC_BENCH_INSTALLED
  const installed = reuse !== undefined ? { bin: reuse, work: undefined, packS: NaN, installS: NaN } : packAndInstall()
  const dataDir = mkdtempSync(join(tmpdir(), 'dbc-bench-cli-'))
  const installedDbc = [installed.bin, '--data-dir', dataDir]
  const cloneDbc = [join(repoRoot, 'bin', 'dbc.js'), '--data-dir', dataDir]
  const fromSource = { DBC_FROM_SOURCE: '1' } // the clone's tsx path even if a fresh dist is there
  const start = spawnSync(process.execPath, [...installedDbc, 'node', 'start', '--detach', '--listen', '/ip4/127.0.0.1/tcp/0', '--location', 'Paris', '--network', 'sandbox'], { encoding: 'utf8', timeout: 120_000 })
  if (start.status !== 0) throw new Error(`the installed dbc could not start a node: ${start.stderr}`)
  try {
    const bare = timeRuns(n, ['-e', ''])
    const results: Record<string, Runs> = {
      'installed --help': timeRuns(n, [...installedDbc, '--help']),
      'installed id': timeRuns(n, [...installedDbc, 'id']),
      'installed node status': timeRuns(n, [...installedDbc, 'node', 'status']),
      'clone (tsx) --help': timeRuns(n, [...cloneDbc, '--help'], fromSource),
      'clone (tsx) node status': timeRuns(n, [...cloneDbc, 'node', 'status'], fromSource)
    }
    const wall0 = summarize(bare.wall).p50
    const cpu0 = summarize(bare.cpu).p50
    const metrics: Record<string, ReturnType<typeof metric>> = {
      'node -e \'\' wall (median)': metric(wall0, 'ms'),
      'node -e \'\' cpu (median)': metric(cpu0, 'ms')
    }
    for (const [k, r] of Object.entries(results)) {
      const goal = k === 'installed node status' ? '< 300 ms' : undefined
      const wall = summarize(r.wall).p50
      metrics[`${k} wall (median)`] = metric(wall, 'ms', wall0, goal, goal === undefined ? undefined : wall < 300)
      metrics[`${k} cpu (median)`] = metric(summarize(r.cpu).p50, 'ms', cpu0)
    }
    return {
      metrics,
      series: { runs: n, samples: Object.fromEntries(Object.entries({ bare, ...results }).map(([k, r]) => [k, { wall: summarize(r.wall), cpu: summarize(r.cpu) }])) },
      notes: [
        `median of ${n} runs each; baseline: a bare \`node -e ''\` in the same run; cpu = user + system time of the run`,
        `load average at the end ${loadavg().map(x => x.toFixed(1)).join(' ')} on ${String(cpus().length)} cores`,
        reuse !== undefined ? `installed package reused from ${reuse}` : `pack (build included) ${installed.packS.toFixed(0)} s, npm install --omit=dev ${installed.installS.toFixed(0)} s`,
        'status talks to a node started by the installed package with `node start --detach` (its daemon runs from dist/)'
      ]
    }
  } finally {
    spawnSync(process.execPath, [...installedDbc, 'node', 'stop'], { timeout: 60_000 })
    rmSync(dataDir, { recursive: true, force: true })
    if (installed.work !== undefined) rmSync(installed.work, { recursive: true, force: true })
  }
}
