import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DockerExecutor, demuxDockerStream } from '../../../src/compute/executors/docker.js'
import type { ExecutionRequest } from '../../../src/compute/executors/types.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-docker-'))
const base: ExecutionRequest = { taskId: 'd1', code: new Uint8Array(0), entry: 'alpine:3', input: new TextEncoder().encode('hi'), timeoutMs: 5000, memoryLimitMib: 64, maxOutputBytes: 1 << 20 }

test('no engine: reported clearly, and runs are refused', async () => {
  const ex = new DockerExecutor({ socketPath: join(dir, 'docker.sock') })
  const a = await ex.availability()
  assert.is(a.available, false)
  assert.match(a.reason ?? '', /no Docker Engine socket at .*docker\.sock/)
  try {
    await ex.run(base)
    assert.unreachable()
  } catch (err) {
    assert.is((err as { code: string }).code, 'EXECUTOR_UNAVAILABLE')
  }
  // the default path on this machine
  const def = await new DockerExecutor().availability()
  assert.ok(def.available || def.reason !== undefined)
})

/** A stand-in Docker Engine: enough of the API for one container that echoes its input. */
function fakeEngine (socketPath: string, calls: string[]): Promise<Server> {
  let env: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', d => { body += String(d) })
    req.on('end', () => {
      calls.push(`${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`)
      if (req.url === '/_ping') { res.end('OK'); return }
      if (req.url === '/containers/create') {
        env = (JSON.parse(body) as { Env: string[] }).Env
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ Id: 'c0ffee' }))
        return
      }
      if (req.url?.startsWith('/containers/c0ffee/logs') === true) {
        const input = Buffer.from(env.find(e => e.startsWith('DBC_INPUT_B64='))?.slice(14) ?? '', 'base64')
        const payload = Buffer.concat([Buffer.from('echo:'), input])
        const header = Buffer.alloc(8); header[0] = 1; header.writeUInt32BE(payload.length, 4)
        const noise = Buffer.alloc(8); noise[0] = 2; noise.writeUInt32BE(3, 4)
        res.end(Buffer.concat([header, payload, noise, Buffer.from('err')]))
        return
      }
      if (req.url === '/containers/c0ffee/wait') { res.end(JSON.stringify({ StatusCode: 0 })); return }
      res.writeHead(204).end()
    })
  })
  return new Promise(resolve => server.listen(socketPath, () => resolve(server)))
}

test('with an engine: create, start, wait, logs, remove', async () => {
  const sock = join(dir, 'engine.sock')
  const calls: string[] = []
  const server = await fakeEngine(sock, calls)
  try {
    const ex = new DockerExecutor({ socketPath: sock })
    assert.equal(await ex.availability(), { available: true })
    const r = await ex.run(base)
    assert.is(new TextDecoder().decode(r.output), 'echo:hi')
    assert.equal(calls.filter(c => c !== 'GET /_ping'), ['POST /containers/create', 'POST /containers/c0ffee/start', 'POST /containers/c0ffee/wait', 'GET /containers/c0ffee/logs', 'DELETE /containers/c0ffee'])
  } finally {
    await new Promise(resolve => server.close(resolve))
  }
})

test('log stream demultiplexing keeps stdout only', () => {
  const frame = (stream: number, s: string): Buffer => { const h = Buffer.alloc(8); h[0] = stream; h.writeUInt32BE(s.length, 4); return Buffer.concat([h, Buffer.from(s)]) }
  assert.is(new TextDecoder().decode(demuxDockerStream(Buffer.concat([frame(1, 'a'), frame(2, 'x'), frame(1, 'bc')]))), 'abc')
})

test.after(() => rmSync(dir, { recursive: true, force: true }))
test.run()
