// The trainers a provider offers: declared by its operator under `trainers:` in the node's config,
// picked by name in a training spec. Nothing a stranger sends names a program: a spec only names
// one of these. A spawned trainer gets a clean environment (the allow-listed variables, setEnv and
// a minimal PATH), a fresh directory per job (removed at the end), resource limits, and it dies
// with its job and with the node. A trainer runs isolated and cannot read the node's data: the
// node sends it the member's shard and the test set over the protocol (`load_data`), and for a
// built-in architecture it serves (`serves: [mlp]`) the seeded initial parameters.
import { accessSync, constants, mkdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { delimiter, join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import type { TrainerConfig } from '../node/config.js'
import { isolationSupport, spawnIsolated } from '../compute/isolation/index.js'
import { ExternalTrainer, MINIMAL_PATH, spawnProcessGroup, type TrainerProcess } from './external.js'
import { initialMlp, mlpShapeOf, trainingDataOf } from './trainer.js'
import { mlpParamCount } from './mlp.js'
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

  /** The first trainer (by name) that serves built-in architecture `kind`: runs such jobs instead of the built-in one. */
  serving (kind: 'mlp'): string | undefined {
    return this.names().find(n => this.trainers[n].serves?.includes(kind) === true)
  }

  /**
   * What is wrong with the operator's trainers that would fail every job's invitation, one line each
   * (the daemon warns at start): a command whose program is not an executable file. Such a trainer
   * was advertised and listed by `dbc node status` with no word until a job was refused.
   */
  problems (): string[] {
    const out: string[] = []
    for (const name of this.names()) {
      const cfg = this.trainers[name]
      if (cfg.command === undefined) continue
      const env = trainerEnv(cfg, this.init.env ?? process.env)
      if (findProgram(cfg.command[0], env.PATH) === undefined) out.push(`config "trainers.${name}.command": ${cfg.command[0]} is not an executable file${cfg.command[0].includes('/') ? '' : ` in the trainer's PATH (${env.PATH})`}: every job naming trainer '${name}' is refused until it is fixed`)
    }
    return out
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
    const spec = ctx.spec
    const model = spec.model.kind === 'mlp' ? { kind: 'mlp', ...mlpShapeOf(spec) } : { kind: 'external', trainer: spec.model.trainer }
    const hello = { rank: ctx.rank, shards: ctx.shards, seed: spec.seed, batch_size: spec.batchSize, learning_rate: spec.learningRate, momentum: spec.momentum, model, dataset: spec.dataset.name }
    const opts = { requestTimeoutMs: cfg.limits.requestTimeoutMs, maxParams: cfg.limits.maxParams }
    if (cfg.socket !== undefined) return await this.prepare(name, await ExternalTrainer.connect(cfg.socket, hello, opts), ctx)
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
    let trainer: ExternalTrainer
    try {
      trainer = await ExternalTrainer.start(proc, hello, { ...opts, onClose: cleanup })
    } catch (err) {
      // start() closed the trainer (its process group is gone, cleanup ran)
      const e = err as TrainingError
      throw new TrainingError(e.code === 'TRAINER_MODEL_TOO_LARGE' ? e.code : 'TRAINER_SPAWN_FAILED', `trainer '${name}' did not start: ${e.message}`, { cause: err })
    }
    return await this.prepare(name, trainer, ctx)
  }

  /**
   * Gives a started trainer the member's data and, for the built-in MLP, the seeded initial
   * parameters (so it starts where the built-in members start); closes it when that fails.
   */
  private async prepare (name: string, trainer: ExternalTrainer, ctx: TrainerStartContext): Promise<ExternalTrainer> {
    try {
      if (ctx.spec.model.kind === 'mlp') {
        const expected = mlpParamCount(mlpShapeOf(ctx.spec))
        if (trainer.paramCount !== expected) throw new TrainingError('TRAINER_SPAWN_FAILED', `its model has ${trainer.paramCount} parameters, the spec's MLP ${expected}`, { hint: 'the trainer must build the MLP hello.model describes, in the layout of docs/external-trainer.md' })
      }
      await trainer.loadData(trainingDataOf(ctx.spec, ctx.rank, ctx.shards))
      if (ctx.spec.model.kind === 'mlp') await trainer.setParams(initialMlp(ctx.spec).params)
      return trainer
    } catch (err) {
      await trainer.close()
      throw new TrainingError('TRAINER_SPAWN_FAILED', `trainer '${name}' did not start: ${(err as Error).message}`, { cause: err })
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
