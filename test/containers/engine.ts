// Shared pieces of the container tests: a real engine (Podman's Docker-compatible service, set up
// by scripts/setup-podman.sh when its socket does not answer), the test image it built and its
// digest, and what the engine holds (`podman ps -a` by label, independent of the executor's code).
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { request } from 'node:http'
import { join } from 'node:path'
import { repoRoot } from '../../demo/network.js'

const run = promisify(execFile)

export const SOCKET_PATH = process.env.DBC_PODMAN_SOCKET ?? '/run/podman/podman.sock'

export interface TestEngine {
  socket: string
  /** The test image (scripts/setup-podman.sh builds it from Debian's busybox-static). */
  image: string
  /** Its id and manifest digest: either pins it in a provider's list. */
  id: string
  digest: string
}

async function ping (socketPath: string): Promise<boolean> {
  return await new Promise(resolve => {
    const req = request({ socketPath, path: '/_ping', timeout: 3000 }, res => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve(res.statusCode === 200 && body.includes('OK')) })
    })
    req.on('timeout', () => { req.destroy(); resolve(false) })
    req.on('error', () => { resolve(false) })
    req.end()
  })
}

let ready: Promise<TestEngine> | undefined

/**
 * The engine and the test image. Runs scripts/setup-podman.sh (idempotent: installs Podman and
 * runc, configures them, starts the service, builds the image) and reads what it prints; when
 * it fails, the error carries its output (it needs root and, when packages are missing, apt).
 */
export async function testEngine (): Promise<TestEngine> {
  ready ??= (async () => {
    let out: { stdout: string, stderr: string }
    const script = join(repoRoot, 'scripts/setup-podman.sh')
    // it needs root: through `sudo -n` for another user (CI), which then owns the socket
    const [cmd, args] = process.getuid?.() === 0 ? ['bash', [script]] : ['sudo', ['-n', '--preserve-env=DBC_PODMAN_SOCKET', 'bash', script]]
    try {
      out = await run(cmd, args, { env: { ...process.env, DBC_PODMAN_SOCKET: SOCKET_PATH }, timeout: 600_000 })
    } catch (err) {
      const e = err as { stdout?: string, stderr?: string, message: string }
      throw new Error(`scripts/setup-podman.sh failed, so no container engine is here: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`)
    }
    const socket = out.stdout.match(/^socket=(\S+)$/m)?.[1]
    const m = out.stdout.match(/^image=(\S+) id=(sha256:[0-9a-f]{64}) digest=(sha256:[0-9a-f]{64})$/m)
    if (socket === undefined || m == null) throw new Error(`scripts/setup-podman.sh printed no socket/image lines:\n${out.stdout}\n${out.stderr}`)
    if (!await ping(SOCKET_PATH)) throw new Error(`the engine at ${SOCKET_PATH} does not answer after scripts/setup-podman.sh`)
    return { socket, image: m[1], id: m[2], digest: m[3] }
  })()
  return await ready
}

/** Runs the podman CLI against the test engine's service (not a user's own rootless store). */
export async function podman (args: string[]): Promise<string> {
  const { stdout } = await run('podman', ['--remote', '--url', `unix://${SOCKET_PATH}`, ...args], { timeout: 60_000 })
  return stdout
}

/** Ids of the containers (any state) carrying `label` (KEY or KEY=VALUE), as `podman ps -a` lists them. */
export async function containersWithLabel (label: string): Promise<string[]> {
  const stdout = await podman(['ps', '-a', '--filter', `label=${label}`, '--format', '{{.ID}}'])
  return stdout.split('\n').map(s => s.trim()).filter(s => s !== '')
}

/** Waits (polling, up to `ms`) until `check` holds; returns whether it did. */
export async function eventually (check: () => Promise<boolean>, ms = 60_000, everyMs = 250): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() > end) return false
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}
