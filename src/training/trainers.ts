// The trainers a provider offers: declared by its operator under `trainers:` in the node's config,
// picked by name in a training spec. Nothing a stranger sends names a program: a spec only names
// one of these. A spawned trainer gets a clean environment (the allow-listed variables, setEnv and
// a minimal PATH), a fresh directory per job (removed at the end), resource limits, and it dies
// with its job and with the node.
import { accessSync, constants, mkdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { delimiter, join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import type { TrainerConfig } from '../node/config.js'
import { isolationSupport, spawnIsolated } from '../compute/isolation/index.js'
import { ExternalTrainer, MINIMAL_PATH, spawnProcessGroup, type TrainerProcess } from './external.js'
import { TrainingError } from './worker.js'
import type { TrainingSpec } from './spec.js'

const log = logger('dbc:training:trainers')

export interface TrainerRegistryInit {
  trainers?: Record<string, TrainerConfig>
  /** The node's data dir: default parent of work dirs, and hidden from trainers. */
  dataDir?: string
  /** The node's environment, source of the allow-listed variables (default process.env). */
  env?: NodeJS.ProcessEnv
  /**
   * false = never use namespace isolation (tests of the fallback); default: use it when
   * isolationSupport() says it works, else a process group with prlimit limits.
   */
  isolate?: boolean
}

export interface TrainerStartContext { rank: number, shards: number, spec: TrainingSpec }

/** The environment a trainer sees: allow-listed names copied from the node's env, then setEnv, and PATH. */
export function trainerEnv (cfg: Pick<TrainerConfig, 'env' | 'setEnv'>, nodeEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of cfg.env ?? []) {
    const v = nodeEnv[name]
    if (v !== undefined) env[name] = v
  }
  Object.assign(env, cfg.setEnv ?? {})
  env.PATH ??= MINIMAL_PATH
  return env
}

/** The program `command[0]` names, searched in the trainer's PATH; undefined if none is executable. */
export function findProgram (program: string, path: string): string | undefined {
  const candidates = program.includes('/') ? [program] : path.split(delimiter).filter(d => d !== '').map(d => join(d, program))
  for (const c of candidates) {
    try { accessSync(c, constants.X_OK); return c } catch {}
  }
  return undefined
}

export class TrainerRegistry {
  private readonly trainers: Record<string, TrainerConfig>
  private readonly init: TrainerRegistryInit
  private warned = false

  constructor (init: TrainerRegistryInit = {}) {
    this.init = init
    this.trainers = init.trainers ?? {}
  }

  /** The names this node offers (sorted): advertised, and quoted when a spec names another. */
  names (): string[] {
    return Object.keys(this.trainers).sort()
  }

  has (name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.trainers, name)
  }

  /** Why a spec's model can not run here, or undefined when it can. */
  unknownTrainer (name: string): string | undefined {
    if (this.has(name)) return undefined
    const offered = this.names()
    return `unknown trainer '${name}' (this node offers: ${offered.length > 0 ? offered.join(', ') : 'none'})`
  }

  /** Starts (or connects to) trainer `name` for one job; rejects with a TrainingError saying why. */
  async start (name: string, ctx: TrainerStartContext): Promise<ExternalTrainer> {
    if (!this.has(name)) throw new TrainingError('UNKNOWN_TRAINER', this.unknownTrainer(name)!)
    const cfg = this.trainers[name]
    const hello = { rank: ctx.rank, shards: ctx.shards, seed: ctx.spec.seed, batch_size: ctx.spec.batchSize, learning_rate: ctx.spec.learningRate, momentum: ctx.spec.momentum }
    const opts = { requestTimeoutMs: cfg.limits.requestTimeoutMs, maxParams: cfg.limits.maxParams }
    if (cfg.socket !== undefined) return await ExternalTrainer.connect(cfg.socket, hello, opts)
    const command = cfg.command!
    const env = trainerEnv(cfg, this.init.env ?? process.env)
    const program = findProgram(command[0], env.PATH)
    if (program === undefined) throw new TrainingError('TRAINER_SPAWN_FAILED', `trainer '${name}' cannot start: ${command[0]} is not an executable file`, { hint: `fix trainers.${name}.command in the provider's config` })
    const dir = await this.workDir(name, cfg)
    const cleanup = async (): Promise<void> => { await rm(dir, { recursive: true, force: true }) }
    let proc: TrainerProcess
    try {
      proc = this.spawn(program, command.slice(1), { cwd: dir, env, cfg })
    } catch (err) {
      await cleanup()
      throw new TrainingError('TRAINER_SPAWN_FAILED', `trainer '${name}' cannot start: ${(err as Error).message}`, { cause: err })
    }
    try {
      return await ExternalTrainer.start(proc, hello, { ...opts, onClose: cleanup })
    } catch (err) {
      // start() closed the trainer (its process group is gone, cleanup ran)
      const e = err as TrainingError
      throw new TrainingError(e.code === 'TRAINER_MODEL_TOO_LARGE' ? e.code : 'TRAINER_SPAWN_FAILED', `trainer '${name}' did not start: ${e.message}`, { cause: err })
    }
  }

  /** A fresh directory for one job under the trainer's workDir (default <dataDir>/trainers). */
  private async workDir (name: string, cfg: TrainerConfig): Promise<string> {
    const dataDir = this.init.dataDir
    const parent = resolve(dataDir ?? '.', cfg.workDir ?? 'trainers')
    // 0711: an isolated trainer runs as another user and must pass through to its own directory
    mkdirSync(parent, { recursive: true, mode: 0o711 })
    return await mkdtemp(join(parent, `${name}-`))
  }

  private spawn (program: string, args: string[], o: { cwd: string, env: Record<string, string>, cfg: TrainerConfig }): TrainerProcess {
    const { memoryMiB, cpuSeconds } = o.cfg.limits
    const limits = { addressSpaceBytes: memoryMiB > 0 ? memoryMiB * 1024 * 1024 : undefined, cpuSeconds: cpuSeconds > 0 ? cpuSeconds : undefined }
    const support = this.init.isolate === false ? { available: false, reason: 'isolation switched off' } : isolationSupport()
    if (support.available) {
      return spawnIsolated(program, args, { cwd: o.cwd, env: o.env, hidePaths: this.hidePaths(), limits, stdio: ['pipe', 'pipe', 'pipe'] })
    }
    if (!this.warned) {
      this.warned = true
      log.error('trainers run without namespace isolation (%s): they can read what the node\'s user can', support.reason ?? 'unavailable')
    }
    // fallback: own process group, rlimits through prlimit, killed when the node dies (setpriv)
    const wrap: string[] = []
    if (findProgram('/usr/bin/setpriv', '') !== undefined) wrap.push('/usr/bin/setpriv', '--pdeathsig', 'KILL', '--')
    const rl = [limits.addressSpaceBytes !== undefined ? `--as=${limits.addressSpaceBytes}` : '', limits.cpuSeconds !== undefined ? `--cpu=${limits.cpuSeconds}` : ''].filter(s => s !== '')
    if (rl.length > 0 && findProgram('/usr/bin/prlimit', '') !== undefined) wrap.push('/usr/bin/prlimit', ...rl, '--')
    return spawnProcessGroup([...wrap, program, ...args], { env: o.env, cwd: o.cwd })
  }

  /**
   * The whole data dir (keys, database, API token, config, logs): the isolation launcher binds
   * the trainer's own directory back even when it lies inside.
   */
  private hidePaths (): string[] {
    return this.init.dataDir === undefined ? [] : [resolve(this.init.dataDir)]
  }
}
