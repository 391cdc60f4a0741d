// A grid job of container tasks over three provider daemons, each running them through the real
// engine (Podman's Docker-compatible service): every result is checked, and no container is left.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { containersWithLabel } from './engine.js'
import { containerJob, ownerLabel, startContainerNet, submit, waitJob, type ContainerNet } from './network.js'

let cn: ContainerNet

test.before(async () => { cn = await startContainerNet({ providers: 3 }) })

test('a grid job of container tasks over three providers completes with correct results', async () => {
  const inputs = Array.from({ length: 9 }, (_, i) => i + 3)
  const jobId = await submit(cn.submitter, containerJob('squares-in-containers', 'square', inputs))
  const status = await waitJob(cn.submitter, jobId, 240_000)
  if (status.status !== 'finished') {
    // the per-copy story (which provider ran, failed or held each copy) is what tells why
    const explain = await cn.submitter.api.call('GET', `/v1/jobs/${jobId}/explain`).catch((err: Error) => err.message)
    assert.unreachable(`job ended ${String(status.status)}: ${JSON.stringify(status.summary ?? status)}\nexplain: ${JSON.stringify(explain)}`)
  }
  const { results } = await cn.submitter.api.call<{ results: Array<{ index: number, output: string }> }>('GET', `/v1/jobs/${jobId}/results`)
  assert.is(results.length, inputs.length)
  const seen = new Set<number>()
  for (const r of results) {
    assert.not.ok(seen.has(r.index), `task ${r.index} has two accepted results`)
    seen.add(r.index)
    assert.is(Buffer.from(r.output, 'base64').toString(), `${inputs[r.index] * inputs[r.index]}\n`, `task ${r.index}`)
  }
  assert.ok((status.summary?.providersUsed ?? 0) >= 2, `the job used ${String(status.summary?.providersUsed)} provider(s)`)
  for (const p of cn.providers) assert.equal(await containersWithLabel(ownerLabel(p.peerId)), [], `provider ${p.spec.name} left containers`)
})

test('the container gets the manifest\'s CPUs and memory, the provider\'s pids limit and user', async () => {
  const jobId = await submit(cn.submitter, containerJob('limits', 'whoami', [0], { resources: { cores: 2, memoryMib: 96 }, verification: { redundancy: 1 } }))
  const status = await waitJob(cn.submitter, jobId, 120_000)
  assert.is(status.status, 'finished', JSON.stringify(status.summary ?? status))
  const { results } = await cn.submitter.api.call<{ results: Array<{ output: string }> }>('GET', `/v1/jobs/${jobId}/results`)
  const out = Buffer.from(results[0].output, 'base64').toString()
  assert.match(out, /^uid=65534 gid=65534$/m)
  assert.match(out, /^root: read-only$/m)
  assert.match(out, /^task: writable$/m)
  assert.match(out, new RegExp(`^memory.limit=${96 * 1024 * 1024}$`, 'm'))
  assert.match(out, /^cpu=200000\/100000$/m)
  assert.match(out, /^pids.max=256$/m)
})

test('a task naming an image the providers do not list fails with the reason', async () => {
  const jobId = await submit(cn.submitter, containerJob('unlisted-image', 'square', [2], { code: { image: 'alpine' }, task: { timeoutMs: 30_000, expectedMs: 1000, maxAttempts: 2 } }))
  const status = await waitJob(cn.submitter, jobId, 120_000)
  assert.is(status.status, 'failed')
  const explain = await cn.submitter.api.call<{ failures: Array<{ reason: string }> }>('GET', `/v1/jobs/${jobId}/explain`).catch(() => undefined)
  const text = JSON.stringify(explain ?? status)
  assert.match(text, /TASK_IMAGE_NOT_ALLOWED: image \\"alpine\\" is not on this provider's image list/)
})

test.after(async () => { await cn?.stop() })

test.run()
