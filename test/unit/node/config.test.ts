import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync, rmSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../../src/node/config.js'
import { ConfigError } from '../../../src/errors.js'
import { capTaskMemory } from '../../../src/node/compute-subsystem.js'
import { tempDir } from '../../helpers/cli.js'

const dir = tempDir()
mkdirSync(dir, { recursive: true })

function fails (fn: () => unknown): ConfigError {
  try { fn() } catch (err) {
    assert.instance(err, ConfigError)
    return err as ConfigError
  }
  throw new assert.Assertion({ message: 'expected a ConfigError', operator: 'throws', generated: true, expects: 'throw', actual: 'no throw' })
}

test('defaults apply when nothing is set', () => {
  const c = loadConfig({ flags: { dataDir: dir }, env: {} })
  assert.equal(c.listen, ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'])
  assert.is(c.api.port, 0)
  assert.is(c.dht.server, true)
})

test('file < environment < flags', () => {
  writeFileSync(join(dir, 'config.yaml'), 'listen: [/ip4/127.0.0.1/tcp/1111]\nlocation: "10,20"\napi:\n  port: 5000\nlog:\n  level: debug\n')
  const fileOnly = loadConfig({ flags: { dataDir: dir }, env: {} })
  assert.equal(fileOnly.listen, ['/ip4/127.0.0.1/tcp/1111'])
  assert.is(fileOnly.api.port, 5000)
  assert.is(fileOnly.log.level, 'debug')
  const withEnv = loadConfig({ flags: { dataDir: dir }, env: { DBC_LISTEN: '/ip4/127.0.0.1/tcp/2222', DBC_API_PORT: '6000' } })
  assert.equal(withEnv.listen, ['/ip4/127.0.0.1/tcp/2222'])
  assert.is(withEnv.api.port, 6000)
  assert.is(withEnv.location, '10,20')
  const withFlags = loadConfig({ flags: { dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/3333'] }, env: { DBC_LISTEN: '/ip4/127.0.0.1/tcp/2222' } })
  assert.equal(withFlags.listen, ['/ip4/127.0.0.1/tcp/3333'])
  assert.is(withFlags.log.level, 'debug') // nested keys merge, not replace
  rmSync(join(dir, 'config.yaml'))
})

test('an address list given as one string in the config file is taken as the flags take it (comma-separated)', () => {
  writeFileSync(join(dir, 'config.yaml'), 'listen: /ip4/127.0.0.1/tcp/1111, /ip4/127.0.0.1/tcp/1112\nannounce: /ip4/1.2.3.4/tcp/1111\n')
  const c = loadConfig({ flags: { dataDir: dir }, env: {} })
  assert.equal(c.listen, ['/ip4/127.0.0.1/tcp/1111', '/ip4/127.0.0.1/tcp/1112'])
  assert.equal(c.announce, ['/ip4/1.2.3.4/tcp/1111'])
  // the provider's lists as DBC_EXECUTORS takes them (helper user16's walk: 'expected array, got string "wasm,process"')
  writeFileSync(join(dir, 'config.yaml'), 'provider:\n  executors: wasm, process\n  gpusOffered: RTX4090\n')
  const p = loadConfig({ flags: { dataDir: dir }, env: {} }).provider
  assert.equal([p?.executors, p?.gpusOffered], [['wasm', 'process'], ['RTX4090']])
  writeFileSync(join(dir, 'config.yaml'), 'listen: not-an-addr\n')
  const e = fails(() => loadConfig({ flags: { dataDir: dir }, env: {} }))
  assert.is(e.key, 'listen.0')
  rmSync(join(dir, 'config.yaml'))
})

// helper user16's walk: a provider started --behind-nat (as the README tells) stayed a DHT server; the
// records closest to it (its own capability records among them) were stored on it, where no submitter
// could read them, so `dbc find executor:wasm` and every job's candidate search missed it
test('behind NAT the DHT is a client unless dht.server is set', () => {
  assert.is(loadConfig({ flags: { dataDir: dir, nat: { behindNat: true } }, env: {} }).dht.server, false)
  assert.is(loadConfig({ flags: { dataDir: dir }, env: { DBC_BEHIND_NAT: '1' } }).dht.server, false)
  writeFileSync(join(dir, 'config.yaml'), 'nat: { behindNat: true }\ndht: { server: true }\n')
  assert.is(loadConfig({ flags: { dataDir: dir }, env: {} }).dht.server, true) // the operator's word wins
  writeFileSync(join(dir, 'config.yaml'), 'nat: { behindNat: true }\n')
  assert.is(loadConfig({ flags: { dataDir: dir }, env: {} }).dht.server, false)
  assert.is(loadConfig({ flags: { dataDir: dir }, env: { DBC_DHT_SERVER: 'true' } }).dht.server, true)
  rmSync(join(dir, 'config.yaml'))
})

test('bad values name the key and the problem', () => {
  let e = fails(() => loadConfig({ flags: { dataDir: dir, listen: ['not-an-addr'] }, env: {} }))
  assert.is(e.key, 'listen.0')
  assert.match(e.message, /not a valid multiaddr/)
  e = fails(() => loadConfig({ flags: { dataDir: dir }, env: { DBC_API_PORT: 'eighty' } }))
  assert.is(e.key, 'api.port')
  assert.match(e.message, /DBC_API_PORT=eighty is not an integer/)
  e = fails(() => loadConfig({ flags: { dataDir: dir, api: { port: 99999 } }, env: {} }))
  assert.is(e.key, 'api.port')
  e = fails(() => loadConfig({ flags: { dataDir: dir, location: '91,0' }, env: {} }))
  assert.is(e.key, 'location')
  e = fails(() => loadConfig({ flags: { dataDir: dir, bootstrap: ['/ip4/10.0.0.1/tcp/4001'] }, env: {} }))
  assert.is(e.key, 'bootstrap.0')
  assert.match(e.message, /\/p2p\/PEER_ID/)
  writeFileSync(join(dir, 'config.yaml'), 'lsiten: [/ip4/127.0.0.1/tcp/1]\n')
  e = fails(() => loadConfig({ flags: { dataDir: dir }, env: {} }))
  assert.is(e.key, 'lsiten')
  assert.match(e.message, /not a known setting/)
  writeFileSync(join(dir, 'config.yaml'), 'listen: [unclosed\n')
  e = fails(() => loadConfig({ flags: { dataDir: dir }, env: {} }))
  assert.match(e.message, /not valid YAML/)
  rmSync(join(dir, 'config.yaml'))
  e = fails(() => loadConfig({ flags: { dataDir: dir }, env: {}, configFile: join(dir, 'missing.yaml') }))
  assert.match(e.message, /does not exist/)
})

// user16 #4: a per-task memory cap above the memory all tasks may hold was accepted ("max per task
// 99999999 MiB" beside "2 GiB for tasks"): both set is an error naming both; slots unset (3/4 of the
// machine's memory) is capped at start with a warning, so a shared config starts on a smaller host
test('provider.maxTask.memoryMiB above provider.slots.memoryMiB is refused; with slots unset it is capped with a warning', () => {
  writeFileSync(join(dir, 'config.yaml'), 'provider: { slots: { memoryMiB: 2048 }, maxTask: { memoryMiB: 99999999 } }\n')
  const e = fails(() => loadConfig({ flags: { dataDir: dir }, env: {} }))
  assert.is(e.key, 'provider.maxTask.memoryMiB')
  assert.match(e.message, /99999999 MiB is above provider\.slots\.memoryMiB \(2048 MiB/)
  assert.match(e.hint ?? '', /at most 2048/)
  writeFileSync(join(dir, 'config.yaml'), 'provider: { slots: { memoryMiB: 2048 }, maxTask: { memoryMiB: 2048 } }\n')
  assert.is(loadConfig({ flags: { dataDir: dir }, env: {} }).provider?.maxTask?.memoryMiB, 2048)
  rmSync(join(dir, 'config.yaml'))
  const warned: string[] = []
  const log = { warn: (_o: unknown, msg: string) => { warned.push(msg) } } as never
  const policy = { maxTaskMemoryMib: 99_999_999 }
  capTaskMemory(policy, 6144, log)
  assert.is(policy.maxTaskMemoryMib, 6144)
  assert.match(warned[0], /^config "provider\.maxTask\.memoryMiB": 99999999 MiB is above the 6144 MiB this node offers to tasks .*capped at 6144 MiB$/)
  capTaskMemory(policy, 8192, log) // at or under: untouched, no warning
  const unset = { maxTaskMemoryMib: 0 }
  capTaskMemory(unset, 8192, log)
  assert.equal([policy.maxTaskMemoryMib, unset.maxTaskMemoryMib, warned.length], [6144, 0, 1])
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })
test.run()
