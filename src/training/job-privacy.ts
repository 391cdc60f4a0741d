// The training transport's hooks into the node's private set (src/net/routes/private-peers.ts):
// which peers a training job keeps off connections, and when it gives them back.
import type { DaemonContext } from '../node/daemon.js'
import type { TrainingPrivacy } from './transport-types.js'

/**
 * A running `routing: overlay` training job's peers join the node's private set (the gater
 * refuses connections with them, an open one is closed), as a grid job's providers do, unless a
 * job allowing connections uses them, or they are the node's bootstrap relays (its envelopes' way
 * out); they leave it when the job ends here (src/net/routes/private-peers.ts leave). A job
 * allowing connections takes its peer out of the set. Bounded: jobs and peers per job.
 */
export function privacyOf (ctx: Pick<DaemonContext, 'privatePeers' | 'config'>): { privacy?: TrainingPrivacy } {
  const priv = ctx.privatePeers
  if (priv === undefined) return {}
  const bootstrap = (peer: string): boolean => ctx.config?.bootstrap?.some(a => a.endsWith(`/p2p/${peer}`)) === true
  // the peers each running overlay-only job made private (not those already private for another reason)
  const madePrivate = new Map<string, Set<string>>()
  return {
    privacy: {
      overlayOnly: (peer, job) => {
        if (bootstrap(peer)) return
        // the node's config forces the overlay: private node-wide, as for grid jobs
        if (job === undefined) { priv.add(peer); return }
        if (priv.has(peer)) {
          // private for another reason (a grid job, the config): not this job's to give back
          if (![...madePrivate.values()].some(s => s.has(peer))) return
        } else if (!priv.joinIfUnwanted(peer)) return
        let set = madePrivate.get(job)
        if (set === undefined) {
          if (madePrivate.size >= 256) madePrivate.delete(madePrivate.keys().next().value as string)
          madePrivate.set(job, set = new Set())
        }
        if (set.size < 128) set.add(peer)
      },
      connectionWanted: peer => { if (priv.has(peer) && ctx.config?.routing?.mode !== 'overlay') priv.release(peer) },
      jobEnded: job => {
        const set = madePrivate.get(job)
        madePrivate.delete(job)
        // a peer another running overlay-only job made private stays
        for (const p of set ?? []) if (![...madePrivate.values()].some(s => s.has(p))) priv.leave(p)
      }
    }
  }
}
