// The scenario registry the CLI, the bench and the tests share.
import { runLookup } from './lookup.js'
import type { Scenario } from './types.js'

export const SCENARIOS: Record<string, { run: Scenario, describe: string, countName: string, defaultNodes: number, smallNodes: number, smallCount?: number }> = {
  lookup: { run: runLookup, describe: 'N findPeer lookups over a static network', countName: 'lookups (default: one per node)', defaultNodes: 10000, smallNodes: 2000 }
}
