// The test runner's leftover sweep (test/run-leftovers.ts): a detached process that carries a file's
// token is found and killed; one with another token (another file's, running beside it) is not.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { TOKEN_VAR, killLeftovers, processesWithToken } from '../run-leftovers.js'

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

test('a detached process with the file token is killed; another file\'s is left alone', async () => {
  const start = (token: string): number => {
    const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore', env: { ...process.env, [TOKEN_VAR]: token } })
    c.unref()
    return c.pid as number
  }
  const mine = start('leftover-test.1')
  const other = start('leftover-test.10') // a prefix of it must not match
  try {
    const until = Date.now() + 10_000
    while (!processesWithToken('leftover-test.1').includes(mine) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(processesWithToken('leftover-test.1'), [mine])
    const line = await killLeftovers('leftover-test.1', 200)
    assert.ok(line?.includes('killed 1 process'), line)
    const gone = Date.now() + 10_000
    while (alive(mine) && Date.now() < gone) await new Promise(resolve => setTimeout(resolve, 50))
    assert.not.ok(alive(mine), 'the leftover still runs')
    assert.ok(alive(other), 'another file\'s process was killed')
    assert.equal(await killLeftovers('leftover-test.1', 0), undefined)
  } finally {
    try { process.kill(mine, 'SIGKILL') } catch {}
    try { process.kill(other, 'SIGKILL') } catch {}
  }
})

test.run()
