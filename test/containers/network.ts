// A local network for container jobs: a submitter and provider daemons (real `dbc node start`
// processes, demo/network.ts) whose config lists the test image (built by scripts/setup-podman.sh),
// plus job helpers. Nothing here asserts on timing.
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'
import { testEngine, type TestEngine } from './engine.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export interface ContainerNet {
  net: LocalNetwork
  engine: TestEngine
  submitter: LocalNode
  providers: LocalNode[]
  /** Starts provider `name` again (same data dir, so the same identity and config). */
  restart: (name: string) => Promise<LocalNode>
  stop: () => Promise<void>
}

/** The owner label value the provider's executor puts on its containers (its peer id, hex). */
export function ownerLabel (peerId: string): string {
  return `dbc.owner=${Buffer.from(peerIdFromString(peerId).toMultihash().bytes).toString('hex')}`
}

function writeProviderConfig (net: LocalNetwork, name: string, engine: TestEngine): void {
  const dir = join(net.root, name)
  mkdirSync(dir, { recursive: true })
  // YAML is a superset of JSON: the daemon reads <dataDir>/config.yaml
  writeFileSync(join(dir, 'config.yaml'), JSON.stringify({ containers: { socket: engine.socket, images: { busybox: { image: engine.image, digest: engine.digest } } } }))
}

export async function startContainerNet (opts: { providers: number }): Promise<ContainerNet> {
  const engine = await testEngine()
  process.env.DBC_SKIP_BENCHMARK = '1' // the daemons inherit it: no CPU benchmark at start
  const net = new LocalNetwork()
  const base = ['--no-connection-monitor']
  try {
    const submitter = await net.start({ name: 'submitter', location: '35.68,139.69', extra: base }, [], { timeoutMs: 120_000 })
    const boot = submitter.addrs[0]
    const startProvider = async (name: string): Promise<LocalNode> => {
      writeProviderConfig(net, name, engine)
      return await net.start({ name, location: '35.68,139.69', extra: base }, [boot], { timeoutMs: 120_000 })
    }
    const providers = await Promise.all(Array.from({ length: opts.providers }, async (_, i) => await startProvider(`p${i}`)))
    for (const p of providers) await waitOffersDocker(p)
    await waitConnected(submitter, providers)
    return {
      net,
      engine,
      submitter,
      providers,
      restart: async (name: string) => {
        const p = await startProvider(name)
        await waitOffersDocker(p)
        await waitConnected(submitter, [p])
        return p
      },
      stop: async () => { await net.stop() }
    }
  } catch (err) {
    for (const n of net.nodes) console.error(`--- ${n.spec.name} log tail ---\n${net.logOf(n).slice(-3000)}`)
    await net.stop()
    throw err
  }
}

/** Waits until the provider offers the docker executor (it checks the engine again every 30 s). */
async function waitOffersDocker (p: LocalNode): Promise<void> {
  const deadline = Date.now() + 90_000
  for (;;) {
    const st = await p.api.call<{ compute?: { executors?: string[], unavailable?: Record<string, string> } }>('GET', '/v1/status', undefined, { timeoutMs: 30_000 })
    if (st.compute?.executors?.includes('docker') === true) return
    assert.ok(Date.now() < deadline, `provider ${p.spec.name} does not offer docker: ${JSON.stringify(st.compute?.unavailable)}`)
    await sleep(500)
  }
}

export async function waitConnected (submitter: LocalNode, providers: LocalNode[]): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const { peers } = await submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
    if (providers.every(p => peers.some(x => x.peerId === p.peerId))) return
    if (Date.now() > deadline) throw new Error('providers did not connect to the submitter')
    await sleep(200)
  }
}

/** A grid job of container tasks on the test image: `entry` picks what the image's program does. */
export function containerJob (name: string, entry: string, inputs: unknown[], over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    executor: 'docker',
    code: { image: 'busybox' },
    entry,
    inputs: { list: inputs },
    resources: { cores: 1, memoryMib: 64 },
    task: { timeoutMs: 60_000, expectedMs: 2000, maxAttempts: 4 },
    ...over
  }
}

export async function submit (submitter: LocalNode, manifest: Record<string, unknown>): Promise<string> {
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/jobs', { manifest, baseDir: submitter.dataDir }, { timeoutMs: 30_000 })
  return jobId
}

/** Polls the job until it is no longer running (or `ms` passed); returns its status. */
export async function waitJob (submitter: LocalNode, jobId: string, ms = 120_000): Promise<Record<string, any>> {
  const end = Date.now() + ms
  for (;;) {
    const status = await submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}`, undefined, { timeoutMs: 30_000 })
    if (status.status !== 'running' || Date.now() > end) return status
    await sleep(250)
  }
}
