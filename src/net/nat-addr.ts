// What a connection's remote address says about how it crosses NATs (no libp2p import: the route
// book, the host and tests share it).

/** A WebRTC connection: `/p2p-circuit/webrtc` when we dialled it (signalled through that relay), `/webrtc/p2p/ID` when the other side did. */
export function isWebRTC (addr: { toString: () => string } | string): boolean {
  return /\/webrtc(\/|$)/.test(addr.toString())
}
