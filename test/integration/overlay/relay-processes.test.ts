// Multi-path delivery across separate node processes on 127.0.0.1: A sends to B with k=2 over
// relays R1 and R2 (no direct path); R1 is killed (SIGKILL) while it holds its copy. B must get
// the message exactly once, and A must see it delivered.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

interface Proc { name: string, child: ChildProcess, id: string, addr: string, events: Array<Record<string, unknown>>, send: (o: unknown) => void }

const fixture = fileURLToPath(new URL('./fixtures/relay-node.ts', import.meta.url))
const procs: Proc[] = []

async function startProc (name: string, env: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', fixture], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
  const events: Array<Record<string, unknown>> = []
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', line => {
      let e: Record<string, unknown>
      try { e = JSON.parse(line) } catch { return }
      events.push(e)
      if (e.event === 'ready') resolve(e)
    })
    child.once('exit', code => reject(new Error(`${name} exited with ${code} before it was ready`)))
  })
  const r = await ready
  const p: Proc = { name, child, id: r.id as string, addr: r.addr as string, events, send: o => child.stdin!.write(JSON.stringify(o) + '\n') }
  procs.push(p)
  return p
}

async function until (cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

test.after(() => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
})

test('k=2 over two relays, one killed mid-flight: delivered exactly once', async () => {
  const [a, b, r1, r2] = await Promise.all([startProc('A'), startProc('B'), startProc('R1', { FORWARD_DELAY_MS: '800' }), startProc('R2', { FORWARD_DELAY_MS: '300' })])
  // A knows both relays, the relays know B; A has no connection to B
  for (const [from, to] of [[a, r1], [a, r2], [r1, b], [r2, b]] as const) {
    from.send({ cmd: 'dial', addr: to.addr })
    await until(() => from.events.some(e => e.event === 'dialed' && e.addr === to.addr), 20_000, `${from.name} → ${to.name}`)
  }
  a.send({ cmd: 'send', to: b.id, text: 'task 42', k: 2, direct: false })
  // R1 holds its copy for 800 ms before forwarding: kill it while it does
  await until(() => r1.events.some(e => e.event === 'relayed'), 10_000, 'R1 to take its copy')
  r1.child.kill('SIGKILL')
  await until(() => a.events.some(e => e.event === 'delivered' || e.event === 'failed'), 20_000, 'A to settle')
  const settled = a.events.find(e => e.event === 'delivered' || e.event === 'failed')!
  assert.is(settled.event, 'delivered', JSON.stringify(settled))
  await new Promise(resolve => setTimeout(resolve, 1500))
  const got = b.events.filter(e => e.event === 'message')
  assert.is(got.length, 1, JSON.stringify(got))
  assert.is(got[0].text, 'task 42')
  assert.is(got[0].from, a.id)
  assert.is(got[0].via, r2.id)
  for (const p of [a, b, r2]) p.send({ cmd: 'stop' })
  await Promise.all([a, b, r2].map(async p => await new Promise(resolve => p.child.exitCode !== null ? resolve(null) : p.child.once('exit', resolve))))
})

test('k=1 through a relay that dies: the sender retries over a spare relay', async () => {
  const [a, b, x, y] = await Promise.all([startProc('A2'), startProc('B2'), startProc('X', { FORWARD_DELAY_MS: '800' }), startProc('Y', { FORWARD_DELAY_MS: '800' })])
  for (const [from, to] of [[a, x], [a, y], [x, b], [y, b]] as const) {
    from.send({ cmd: 'dial', addr: to.addr })
    await until(() => from.events.some(e => e.event === 'dialed' && e.addr === to.addr), 20_000, `${from.name} → ${to.name}`)
  }
  a.send({ cmd: 'send', to: b.id, text: 'task 43', k: 1, direct: false })
  await until(() => [x, y].some(p => p.events.some(e => e.event === 'relayed')), 10_000, 'a relay to take the copy')
  const first = x.events.some(e => e.event === 'relayed') ? x : y
  const spare = first === x ? y : x
  first.child.kill('SIGKILL')
  await until(() => a.events.some(e => e.event === 'delivered' || e.event === 'failed'), 20_000, 'A to settle')
  const settled = a.events.find(e => e.event === 'delivered' || e.event === 'failed')!
  assert.is(settled.event, 'delivered', JSON.stringify(settled))
  assert.is(settled.via, spare.id)
  assert.ok((settled.attempts as number) >= 2)
  await new Promise(resolve => setTimeout(resolve, 500))
  assert.is(b.events.filter(e => e.event === 'message').length, 1)
  for (const p of [a, b, spare]) p.send({ cmd: 'stop' })
  await Promise.all([a, b, spare].map(async p => await new Promise(resolve => p.child.exitCode !== null ? resolve(null) : p.child.once('exit', resolve))))
})

test.run()
