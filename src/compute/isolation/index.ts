// Runs an untrusted program in its own PID and mount namespace (Linux, util-linux tools): paths it must not
// read are covered (an empty tmpfs over a directory, /dev/null over a file), it runs as an unprivileged user
// with no capabilities and rlimits, and every process it starts dies with it, even one that left with setsid.
// See launcher.ts for the command line and src/compute/README.md for what this does and does not stop.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { launchCommand, type IsolationMode, type Tools } from './launcher.js'

export { TASK_UID } from './launcher.js'

export interface IsolationOptions {
  /** Working directory; the launcher makes it the task user's and keeps it visible even under a hidden path. */
  cwd: string
  /** The whole environment of the command (nothing of the daemon's is added). */
  env: Record<string, string>
  /** Absolute paths the command must not see: directories become empty, files read as /dev/null. */
  hidePaths?: string[]
  /** rlimits, soft = hard. `processes` counts every process of the task uid on the machine (RLIMIT_NPROC). */
  limits?: { addressSpaceBytes?: number, cpuSeconds?: number, processes?: number, openFiles?: number }
  stdio?: StdioOptions
  /** Give the command an empty network namespace (no network at all). Default false: the host's network. */
  noNetwork?: boolean
}

export interface IsolatedProcess {
  child: ChildProcess
  /** Kills every process of the task (all of its PID namespace) and resolves once they are gone. */
  kill: () => Promise<void>
}

const TOOL_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin']

function findTool (name: string): string | undefined {
  for (const d of TOOL_DIRS) if (existsSync(join(d, name))) return join(d, name)
  return undefined
}

interface Support { available: boolean, reason?: string, mode?: IsolationMode, tools?: Tools }
let cached: Support | undefined

function probe (): Support {
  if (process.platform !== 'linux') return { available: false, reason: `process isolation needs Linux namespaces; this is ${process.platform}` }
  const found = { env: findTool('env'), prlimit: findTool('prlimit'), setpriv: findTool('setpriv'), unshare: findTool('unshare'), sh: findTool('sh') }
  const missing = Object.entries(found).filter(([, p]) => p === undefined).map(([n]) => n)
  if (missing.length > 0) return { available: false, reason: `process isolation needs ${missing.join(', ')} (util-linux / coreutils), not found in ${TOOL_DIRS.join(':')}` }
  const tools = found as Tools
  const isRoot = process.getuid?.() === 0
  const modes: IsolationMode[] = isRoot ? ['root'] : ['userns']
  const dir = mkdtempSync(join(tmpdir(), 'dbc-isolation-probe-'))
  try {
    let reason = ''
    for (const mode of modes) {
      const { file, args } = launchCommand({ command: 'true', args: [], cwd: dir, env: { PATH: '/usr/bin:/bin' }, hidePaths: [], limits: { processes: 64 }, noNetwork: true }, mode, tools)
      const r = spawnSync(file, args, { cwd: dir, env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8', timeout: 10_000 })
      if (r.status === 0) return { available: true, mode, tools }
      reason = (r.error?.message ?? r.stderr.trim().split('\n').pop() ?? '') || `exit status ${String(r.status)}`
    }
    const how = isRoot ? 'PID and mount namespaces' : 'an unprivileged user namespace (unshare --user --map-root-user)'
    return { available: false, reason: `cannot create ${how} for task isolation: ${reason}${isRoot ? '' : '; run the daemon as root, or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)'}` }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Whether spawnIsolated works here (checked once by starting a trivial isolated process), and if not why. */
export function isolationSupport (): { available: boolean, reason?: string } {
  cached ??= probe()
  return cached.reason === undefined ? { available: cached.available } : { available: cached.available, reason: cached.reason }
}

/** Host pids of the direct children of `pid` (the namespace's init is unshare's only child). */
function childrenOf (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(s => s !== '').map(Number)
  } catch {
    return []
  }
}

/**
 * Spawns `command args` isolated. Throws when isolation is not available (see isolationSupport()), so a
 * caller cannot run an untrusted program unisolated by mistake.
 */
export function spawnIsolated (command: string, args: string[], opts: IsolationOptions): IsolatedProcess {
  cached ??= probe()
  if (!cached.available || cached.mode === undefined || cached.tools === undefined) throw new Error(cached.reason ?? 'process isolation is not available')
  if (!isAbsolute(opts.cwd)) throw new RangeError(`the working directory must be an absolute path, not ${opts.cwd}`)
  const cwd = resolve(opts.cwd)
  const hidePaths = (opts.hidePaths ?? []).map(p => {
    if (!isAbsolute(p)) throw new RangeError(`a hidden path must be absolute, not ${p}`)
    return resolve(p)
  })
  const { file, args: argv } = launchCommand({ command, args, cwd, env: opts.env, hidePaths, limits: opts.limits ?? {}, noNetwork: opts.noNetwork }, cached.mode, cached.tools)
  const child = spawn(file, argv, { cwd, env: opts.env, stdio: opts.stdio ?? ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<void>(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    child.once('exit', () => resolve())
    child.once('error', () => resolve())
  })
  let killing: Promise<void> | undefined
  const kill = async (): Promise<void> => {
    killing ??= (async () => {
      const pid = child.pid
      if (pid === undefined) return
      // Killing the namespace's init makes the kernel kill everything else in the namespace before the init
      // becomes a zombie, which is when unshare's wait returns and it exits: so "exited" means "all gone".
      const inits = child.exitCode === null && child.signalCode === null ? childrenOf(pid) : []
      for (const p of inits) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } }
      // With no init seen (not forked yet, or gone), kill unshare itself; --kill-child takes its init along.
      if (inits.length === 0) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
      let timer: NodeJS.Timeout | undefined
      await Promise.race([exited, new Promise(resolve => { timer = setTimeout(resolve, 5000) })])
      clearTimeout(timer)
      try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
      await exited
    })()
    await killing
  }
  return { child, kill }
}
