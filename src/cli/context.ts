import type { Command } from 'commander'
import { resolve } from 'node:path'
import { DEFAULT_DATA_DIR } from '../node/config.js'

/** The data dir from the global --data-dir option, DBC_DATA_DIR, or ~/.dbc. */
export function dataDirOf (cmd: Command): string {
  const opts = cmd.optsWithGlobals() as { dataDir?: string }
  return resolve(opts.dataDir ?? process.env.DBC_DATA_DIR ?? DEFAULT_DATA_DIR)
}
