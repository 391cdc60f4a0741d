// Stress of the docker executor on the real engine (Podman): many quick containers, each printing
// one known line (`square` of its index), run by two builds of the executor in alternating rounds in
// the same minutes, counting answers that are right, empty, wrong (partial), and failures by code,
// and how many containers each build created (a build that re-runs a task creates more).
// Not a test file (no timing, run by hand, ideally under a CPU hog):
//
//   timeout 900 node_modules/.bin/node -e 'for(;;){}' &
//   node --import tsx test/containers/stress.ts [--old /tmp/base/src/compute/executors/docker.ts] [--runs 120] [--rounds 4] [--parallel 2]
import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadavg, tmpdir } from 'node:os'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Docker from 'dockerode'
import { encodeContainerCode } from '../../src/core/compute/container-code.js'
import { testEngine } from './engine.js'

const { values } = parseArgs({ options: { old: { type: 'string' }, runs: { type: 'string', default: '120' }, rounds: { type: 'string', default: '4' }, parallel: { type: 'string', default: '2' } } })
const runs = Number(values.runs)
const rounds = Number(values.rounds)
const parallel = Number(values.parallel)

interface Tally { right: number, empty: number, wrong: number, failed: Record<string, number>, containers: number, runs: number, examples: string[] }
type ExecutorCtor = new (init: Record<string, unknown>) => { run: (req: Record<string, unknown>) => Promise<{ output: Uint8Array }>, close: () => Promise<void> }

const engine = await testEngine()
const builds: Array<{ name: string, Executor: ExecutorCtor, tally: Tally }> = []
for (const [name, path] of [['new', resolve('src/compute/executors/docker.ts')], ...(values.old !== undefined ? [['old', resolve(values.old)]] : [])]) {
  const mod = await import(pathToFileURL(path).href) as { DockerExecutor: ExecutorCtor }
  builds.push({ name, Executor: mod.DockerExecutor, tally: { right: 0, empty: 0, wrong: 0, failed: {}, containers: 0, runs: 0, examples: [] } })
}

const workDir = mkdtempSync(join(tmpdir(), 'dbc-ctr-stress-'))
const socketPath = engine.socket.replace(/^unix:\/\//, '')
const perRound = Math.ceil(runs / rounds)
const loads: number[] = []
for (let round = 0; round < rounds; round++) {
  // alternate which build goes first, so neither always runs in the same minute of the hog
  for (const b of round % 2 === 0 ? builds : [...builds].reverse()) {
    const client = new Docker({ socketPath })
    const create = client.createContainer.bind(client)
    client.createContainer = (async (o: Docker.ContainerCreateOptions) => { b.tally.containers++; return await create(o) }) as typeof client.createContainer
    const ex = new b.Executor({ engine: client, owner: `stress-${b.name}`, workDir, settings: { socket: engine.socket, images: { busybox: { image: engine.image, digest: engine.digest } } } })
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < perRound) {
        const i = round * perRound + next++
        const want = `${i * i}\n`
        b.tally.runs++
        try {
          const r = await ex.run({ taskId: `s${i}`, code: encodeContainerCode({ image: 'busybox', network: false }), entry: 'square', input: new TextEncoder().encode(`${i}\n`), timeoutMs: 60_000, memoryLimitMib: 64, maxOutputBytes: 1 << 20, cpus: 1 })
          const got = new TextDecoder().decode(r.output)
          if (got === want) b.tally.right++
          else if (got === '') b.tally.empty++
          else { b.tally.wrong++; if (b.tally.examples.length < 5) b.tally.examples.push(`${JSON.stringify(got)} for ${JSON.stringify(want)}`) }
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'other'
          b.tally.failed[code] = (b.tally.failed[code] ?? 0) + 1
          if (b.tally.examples.length < 5) b.tally.examples.push(`${code}: ${(err as Error).message.slice(0, 200)}`)
        }
      }
    }
    await Promise.all(Array.from({ length: parallel }, worker))
    await ex.close()
    loads.push(loadavg()[0])
  }
}
rmSync(workDir, { recursive: true, force: true })
console.log(`load average (1 min) after each build's round: ${loads.map(l => l.toFixed(2)).join(' ')}`)
for (const b of builds) {
  const t = b.tally
  console.log(`${b.name}: ${t.runs} tasks, ${t.containers} containers: right ${t.right}, empty ${t.empty}, wrong ${t.wrong}, failed ${JSON.stringify(t.failed)}${t.examples.length > 0 ? `\n  e.g. ${t.examples.join('\n  e.g. ')}` : ''}`)
}
