import type { Command } from 'commander'
import type { ApiClient } from '../api/client.js'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

// The same default as node/config.ts's DEFAULT_DATA_DIR (a unit test holds them equal): the
// config module loads zod, yaml and multiaddr, which a read command must not pay for.
const DEFAULT_DATA_DIR = join(homedir(), '.dbc')

/** The data dir from the global --data-dir option, DBC_DATA_DIR, or ~/.dbc. */
export function dataDirOf (cmd: Command): string {
  const opts = cmd.optsWithGlobals() as { dataDir?: string }
  return resolve(opts.dataDir ?? process.env.DBC_DATA_DIR ?? DEFAULT_DATA_DIR)
}

/** <dataDir>/identity.key, as node/identity.ts names it. */
export function identityFileOf (dataDir: string): string {
  return join(dataDir, 'identity.key')
}

/** A client for the node of this command's data dir; the API client is loaded on first use. */
export async function clientOf (cmd: Command): Promise<ApiClient> {
  const { ApiClient } = await import('../api/client.js')
  return ApiClient.connect(dataDirOf(cmd))
}
