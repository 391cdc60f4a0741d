// Job errors, one class per condition (told apart by `name` and `code`).
import { DbcError, type DbcErrorOptions } from '../errors.js'

export class JobNotFoundError extends DbcError {
  override name = 'JobNotFoundError'
  constructor (jobId: string, opts: DbcErrorOptions = {}) {
    super('JOB_NOT_FOUND', `no job ${jobId} on this node`, { hint: 'list jobs with `dbc job list`', ...opts })
  }
}

export class JobAccessDeniedError extends DbcError {
  override name = 'JobAccessDeniedError'
  constructor (jobId: string, action: string, reason: string, opts: DbcErrorOptions = {}) {
    super('JOB_ACCESS_DENIED', `may not ${action} job ${jobId}: ${reason}`, { hint: 'use the owner key, or a session token the owner signed for this action', ...opts })
  }
}
