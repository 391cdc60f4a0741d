// `dbc --help`, `dbc id` and `dbc node status` must start fast: building the program and running
// a read command may not load the heavy packages (libp2p, the EVM, viem, ...), only the action
// that needs them may (src/cli/main.ts). Every module resolved in this process is recorded.
import { registerHooks } from 'node:module'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const seen = new Set<string>()
registerHooks({
  resolve (specifier, context, next) {
    const r = next(specifier, context)
    seen.add(r.url)
    return r
  }
})

// packages a read command has no use for, and the project's own heavy layers (jobs/task-output is pure: the
// CLI strips terminal escapes from peers' text with it)
const HEAVY = [
  /node_modules\/(libp2p|@libp2p|@chainsafe|viem|@ethereumjs|@noble\/curves|protobufjs|pino|dockerode|yaml|zod|cli-progress|msgpackr|fastify)\//,
  /\/src\/(node\/daemon|node\/config|node\/identity|net|chain\/(?!format)|wire|compute|training|jobs\/(?!task-output\.)|store)\b/
]
const heavyLoaded = (): string[] => [...seen].filter(u => HEAVY.some(r => r.test(u))).map(u => u.replace(/^.*\/(node_modules|src)\//, '$1/'))

test('building the program (what `dbc --help` does) loads nothing heavy', async () => {
  const { buildProgram } = await import('../../../src/cli/main.js')
  const program = buildProgram()
  assert.ok(program.commands.length > 5)
  assert.equal(heavyLoaded(), [])
})

test('`dbc id` and `dbc node status` (no node running) load nothing heavy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-lazy-'))
  try {
    // an identity written byte for byte (Ed25519: seed || public key), not through libp2p
    const { generateKeyPairSync } = await import('node:crypto')
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
    const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(dir, 'identity.key'), Buffer.concat([Buffer.of(8, 1, 18, 64), seed, pub]), { mode: 0o600 })
    const { buildProgram } = await import('../../../src/cli/main.js')
    const out: string[] = []
    const write = process.stdout.write
    process.stdout.write = ((s: string) => { out.push(s); return true }) as typeof process.stdout.write
    try {
      await buildProgram().parseAsync(['node', 'dbc', '--data-dir', dir, 'id', '--json'])
    } finally { process.stdout.write = write }
    assert.match(JSON.parse(out.join('')).peerId, /^12D3KooW/)
    try {
      await buildProgram().parseAsync(['node', 'dbc', '--data-dir', dir, 'node', 'status'])
      assert.unreachable()
    } catch (err) {
      assert.is((err as { code?: string }).code, 'DAEMON_NOT_RUNNING')
    }
    assert.equal(heavyLoaded(), [])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
