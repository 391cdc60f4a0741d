// Yamux window updates as go-yamux and rust-yamux send them: only once the peer has used half of a
// stream's receive window, not after every data frame. @libp2p/yamux 8 answers each data frame it
// reads with a window update frame of its own (one more Noise message and socket write per frame
// received, and one more frame for the peer to read): on a lease stream of tiny tasks that was a
// third of the submitter's socket writes. The window's size and auto-tuning are unchanged, a stream
// still opens (SYN/ACK flags) and resumes as before, and the sender always has half a window left.
import { YamuxStream, StreamState } from '@libp2p/yamux/stream'

interface WindowFields { state: StreamState, recvWindow: number, recvWindowCapacity: number }

let installed = false

/** Installs the half-window rule on every yamux stream of this process (idempotent). */
export function lazyYamuxWindowUpdates (): void {
  if (installed) return
  installed = true
  const proto = YamuxStream.prototype as unknown as { sendWindowUpdate: (this: WindowFields) => void }
  const send = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowFields): void {
    // an established stream with more than half its window free needs no update yet
    if (this.state === StreamState.Established && this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) return
    send.call(this)
  }
}
