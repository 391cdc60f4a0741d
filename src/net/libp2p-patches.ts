// The process-wide fixes the daemon's libp2p stack runs with, in one place: createHost installs
// them, and so do the benches that build their own nodes (bench/overlay.ts, bench/overlay-peer.ts),
// so that their figures are the daemon's. Each is idempotent and patches a library prototype.
import { lazyYamuxWindowUpdates } from './yamux-window.js'
import { installLengthPrefixFix } from './lp-decoder-fix.js'
import { installTcpCork } from './tcp-cork.js'

export function installLibp2pPatches (): void {
  lazyYamuxWindowUpdates() // window updates at half a window used, not per data frame (src/net/yamux-window.ts)
  installLengthPrefixFix() // no RangeError with a stack per Noise read (src/net/lp-decoder-fix.ts)
  installTcpCork() // one socket write per libp2p message on TCP, not one per part (src/net/tcp-cork.ts)
}
