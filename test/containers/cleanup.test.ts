// No container outlives its task on a provider daemon: not when the submitter cancels the job,
// not when the provider stops, and not when it is killed with -9 (its next start removes what it
// labelled as its own).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { containersWithLabel, eventually } from './engine.js'
import { containerJob, ownerLabel, startContainerNet, submit, waitJob, type ContainerNet } from './network.js'

let cn: ContainerNet

test.before(async () => { cn = await startContainerNet({ providers: 1 }) })

const loopJob = (name: string): Record<string, unknown> => containerJob(name, 'loop', [1], { task: { timeoutMs: 120_000, expectedMs: 1000, maxAttempts: 1 } })

test('cancelling a job stops and removes its running container', async () => {
  const label = ownerLabel(cn.providers[0].peerId)
  const jobId = await submit(cn.submitter, loopJob('loop-then-cancel'))
  assert.ok(await eventually(async () => (await containersWithLabel(label)).length > 0, 120_000), 'no container started')
  await cn.submitter.api.call('POST', `/v1/jobs/${jobId}/cancel`)
  assert.is((await waitJob(cn.submitter, jobId)).status, 'cancelled')
  assert.ok(await eventually(async () => (await containersWithLabel(label)).length === 0, 60_000), `containers left after cancel: ${(await containersWithLabel(label)).join(', ')}`)
})

test('after kill -9 of the provider, its next start removes the containers it left', async () => {
  const p = cn.providers[0]
  const label = ownerLabel(p.peerId)
  const jobId = await submit(cn.submitter, loopJob('loop-then-kill'))
  assert.ok(await eventually(async () => (await containersWithLabel(label)).length > 0, 120_000), 'no container started')
  const orphans = await containersWithLabel(label)
  const exited = new Promise(resolve => p.process.once('exit', resolve))
  p.process.kill('SIGKILL')
  await exited
  // the engine keeps a container whose provider died: it is still there, running the loop
  assert.equal(await containersWithLabel(label), orphans)
  const again = await cn.restart(p.spec.name)
  assert.is(again.peerId, p.peerId)
  cn.providers[0] = again
  const left = await containersWithLabel(label)
  assert.equal(left.filter(id => orphans.includes(id)), [], 'the restarted provider kept the containers its crash left')
  await cn.submitter.api.call('POST', `/v1/jobs/${jobId}/cancel`)
  assert.ok(await eventually(async () => (await containersWithLabel(label)).length === 0, 60_000), 'containers left after the job was cancelled')
})

test('a provider that is stopped (SIGTERM) removes its running container before it exits', async () => {
  const p = cn.providers[0]
  const label = ownerLabel(p.peerId)
  const jobId = await submit(cn.submitter, loopJob('loop-then-stop'))
  assert.ok(await eventually(async () => (await containersWithLabel(label)).length > 0, 120_000), 'no container started')
  const exited = new Promise(resolve => p.process.once('exit', resolve))
  p.process.kill('SIGTERM')
  await exited
  assert.equal(await containersWithLabel(label), [], 'the stopped provider left its container')
  await cn.submitter.api.call('POST', `/v1/jobs/${jobId}/cancel`)
})

test.after(async () => { await cn?.stop() })

test.run()
