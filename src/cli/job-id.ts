// A job named on the command line by a prefix of its id: `dbc job list` prints the first 16 hex
// digits of each id, and every command that takes a job (status, results, cancel, explain, top-up,
// settle, logs) accepts that, or any prefix of at least MIN_PREFIX digits that names one job of
// this node, grid or training. A full id (or anything not a hex prefix) is sent as given: the
// daemon then says whether it knows it.
import type { ApiClient } from '../api/client.js'
import { DbcError } from '../errors.js'

/** The shortest prefix taken: shorter ones are sent as given (and are then not found). */
export const MIN_PREFIX = 6
const FULL_ID = /^[0-9a-f]{64}$/

/** The job id `given` names: itself when full or not a hex prefix, else the one job of this node it starts. */
export async function resolveJobId (client: ApiClient, given: string): Promise<string> {
  const id = given.trim().toLowerCase()
  if (FULL_ID.test(id) || !/^[0-9a-f]+$/.test(id) || id.length < MIN_PREFIX) return given
  const grid = await client.call<{ jobs: Array<{ jobId: string }> }>('GET', '/v1/jobs')
  // a node without the training subsystem answers 404: it has no training jobs
  const training = await client.call<{ jobs: Array<{ jobId: string }> }>('GET', '/v1/training').catch(() => ({ jobs: [] }))
  const ids = [...new Set([...grid.jobs, ...training.jobs].map(j => String(j.jobId)).filter(j => j.toLowerCase().startsWith(id)))]
  if (ids.length === 1) return ids[0]
  if (ids.length === 0) return given
  throw new DbcError('BAD_ARGUMENT', `job ${given} is ambiguous: ${ids.length} jobs of this node start with it (${ids.slice(0, 4).map(j => j.slice(0, 20) + '…').join(', ')})`, { hint: 'give more of the id (`dbc job list --json` prints them whole)' })
}
