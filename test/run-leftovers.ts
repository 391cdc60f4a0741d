// Processes a test file left running: the runner gives each file's process a token in its
// environment (TEST_FILE_TOKEN), which every process it starts inherits, detached daemons
// (`dbc node start --detach`, their own session) included; once the file's process has ended
// (or was killed for running past its limit), whatever still carries the token is the file's
// leftover: a daemon its cleanup never stopped because the file was killed first, or one a test
// forgot. Leftovers are given a moment to finish exiting, then killed and named in the file's
// output, so that they cannot burn CPU under the files that run after it (a timed-out long file
// once left its daemons running for two hours). Linux only: elsewhere nothing is found.
import { readdirSync, readFileSync } from 'node:fs'

export const TOKEN_VAR = 'TEST_FILE_TOKEN'

/** Pids (other than this process) whose environment holds TOKEN_VAR=token (token`*` with prefix). */
export function processesWithToken (token: string, prefix = false): number[] {
  const needle = Buffer.from(`${TOKEN_VAR}=${token}${prefix ? '' : '\0'}`)
  const out: number[] = []
  let entries: string[]
  try { entries = readdirSync('/proc') } catch { return out }
  for (const name of entries) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue
    let env: Buffer
    try { env = readFileSync(`/proc/${pid}/environ`) } catch { continue } // gone, or not ours
    // a zombie (exited, not yet reaped) reads an empty environment: nothing to kill
    if (env.indexOf(needle) === 0 || env.includes(Buffer.concat([Buffer.from([0]), needle]))) out.push(pid)
  }
  return out
}

/**
 * Kills what the file left running: waits up to `graceMs` for leftovers to exit by themselves
 * (a daemon told to stop may still be closing), then SIGKILLs the rest. Returns a line for the
 * file's output naming how many were killed, or undefined when none were left.
 */
export async function killLeftovers (token: string, graceMs = 3000): Promise<string | undefined> {
  let pids = processesWithToken(token)
  const until = Date.now() + graceMs
  while (pids.length > 0 && Date.now() < until) {
    await new Promise(resolve => setTimeout(resolve, 100))
    pids = processesWithToken(token)
  }
  if (pids.length === 0) return undefined
  const names: string[] = []
  for (const pid of pids) {
    let cmd = ''
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(s => s !== '').slice(0, 4).join(' ') } catch {}
    try { process.kill(pid, 'SIGKILL'); names.push(`${pid} (${cmd.slice(0, 120)})`) } catch {}
  }
  if (names.length === 0) return undefined
  return `[runner] killed ${names.length} process(es) the file left running: ${names.join('; ')}`
}

/** On the runner's own SIGINT/SIGTERM: kills every process any of its files started, then exits. */
export function killAllOnSignal (runToken: string): void {
  const end = (signal: NodeJS.Signals): void => {
    for (const pid of processesWithToken(runToken, true)) { try { process.kill(pid, 'SIGKILL') } catch {} }
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', end)
  process.once('SIGTERM', end)
}
