// The multi-host harness itself: refuses clearly without root, shapes bandwidth with tbf, and
// leaves no namespace behind. (Scenario tests: netns.test.ts, netns-linkcut.test.ts.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { NetnsCluster, repoRoot } from '../netns/harness.js'

const node22 = join(repoRoot, 'node_modules/.bin/node')

test('without root the harness refuses with the reason (the test fails, never passes silently)', () => {
  // drop to nobody for one child: creating a cluster must throw and say why
  const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', node22, '--import', 'tsx', '--no-warnings', join(repoRoot, 'test/netns/probe-unavailable.ts')], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, HOME: '/tmp' } })
  assert.match(out, /^refused: multi-host harness unavailable: .*needs root/m)
})

test('a 20 Mbit/s tbf uplink: 4 MB between two hosts takes about 1.6 s; teardown leaves nothing', async () => {
  const c = await NetnsCluster.create([{ name: 'a', city: 'Paris' }, { name: 'b', city: 'Berlin' }], { rate: '20mbit' })
  try {
    const [a, b] = c.hosts
    const bytes = 4 * 1024 * 1024
    const sink = c.exec(b, [node22, '-e', `const s=require('net').createServer(c=>{let n=0;c.on('data',d=>{n+=d.length});c.on('end',()=>{console.log('got',n);process.exit(0)})});s.listen(5000,'${b.addr}',()=>console.log('listening'))`], 'sink')
    const lines = createInterface({ input: sink.stdout! })[Symbol.asyncIterator]()
    assert.is((await lines.next()).value, 'listening')
    const t0 = Date.now()
    c.exec(a, [node22, '-e', `const c=require('net').connect(5000,'${b.addr}',()=>{c.end(Buffer.alloc(${bytes}))})`], 'source')
    const got = (await lines.next()).value as string
    const ms = Date.now() - t0
    console.log(`4 MiB over a 20 Mbit/s tbf uplink: ${ms} ms (${(bytes * 8 / ms / 1000).toFixed(1)} Mbit/s)`)
    assert.is(got, `got ${bytes}`)
    const ideal = bytes * 8 / 20e6 * 1000
    assert.ok(ms >= ideal * 0.8, `too fast for 20 Mbit/s: ${ms} ms (ideal ${ideal.toFixed(0)} ms): not shaped`)
    assert.ok(ms <= ideal * 3, `too slow: ${ms} ms (ideal ${ideal.toFixed(0)} ms)`)
  } finally {
    await c.destroy()
    assert.equal(c.remainingNamespaces(), [])
  }
})

test.run()
