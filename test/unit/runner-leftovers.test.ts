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
  // tokens of this process only: another checkout's run of this file at the same time (agents share
  // a machine) would otherwise find, and kill, this run's process as its own
  const token = `leftover-test.${process.pid}.1`
  const mine = start(token)
  const other = start(`${token}0`) // a prefix of it must not match
  try {
    const until = Date.now() + 10_000
    while (!processesWithToken(token).includes(mine) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(processesWithToken(token), [mine])
    const line = await killLeftovers(token, 200)
    assert.ok(line?.includes('killed 1 process'), line)
    const gone = Date.now() + 10_000
    while (alive(mine) && Date.now() < gone) await new Promise(resolve => setTimeout(resolve, 50))
    assert.not.ok(alive(mine), 'the leftover still runs')
    assert.ok(alive(other), 'another file\'s process was killed')
    assert.equal(await killLeftovers(token, 0), undefined)
  } finally {
    try { process.kill(mine, 'SIGKILL') } catch {}
    try { process.kill(other, 'SIGKILL') } catch {}
  }
})

test.run()
