// The training transport's hooks into the node's private set (src/net/routes/private-peers.ts):
// which peers a training job THIS node coordinates keeps off connections, and when it gives them
// back. A remote job (this node a member) never reaches these hooks: its spec routes its own
// frames only (review F0/F1: a stranger must not rewrite this node's connection gater).
import type { DaemonContext } from '../node/daemon.js'
import type { TrainingPrivacy } from './transport-types.js'

/**
 * A running `routing: overlay` training job this node coordinates holds its peers in the node's
 * private set (the gater refuses connections with them, an open one is closed), unless a job
 * allowing connections uses them, or they are the node's bootstrap relays (its envelopes' way
 * out); each job lets go of them when it ends here (OverlayOnlyPeers.unhold: a peer stays while
 * another job holds it, or the node's own reasons do). A local job allowing connections takes out
 * only peers training itself made private. Bounded in private-peers.ts (never evicts for training).
 */
export function privacyOf (ctx: Pick<DaemonContext, 'privatePeers' | 'config'>): { privacy?: TrainingPrivacy } {
  const priv = ctx.privatePeers
  if (priv === undefined) return {}
  const bootstrap = (peer: string): boolean => ctx.config?.bootstrap?.some(a => a.endsWith(`/p2p/${peer}`)) === true
  return {
    privacy: {
      overlayOnly: (peer, job) => {
        if (bootstrap(peer)) return
        // the node's config forces the overlay: private node-wide, as for grid jobs
        if (job === undefined) { priv.add(peer); return }
        priv.hold(peer, job)
      },
      connectionWanted: peer => { if (ctx.config?.routing?.mode !== 'overlay') priv.releaseHeld(peer) },
      jobEnded: job => {
        for (const p of priv.list()) priv.unhold(p, job)
      }
    }
  }
}
