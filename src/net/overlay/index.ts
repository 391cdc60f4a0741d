// The overlay's runtime adapters: membership/gossip, sealed multi-path relay, capability index,
// and the Overlay that runs them together on one host.
export { Overlay, type OverlayInit, type PeerEstimate, type KnownPeer } from './overlay.js'
export { MembershipService, MEMBERSHIP_PROTOCOL, type MembershipServiceInit, type PeerInfo } from './membership.js'
export { EnvelopeService, RELAY_PROTOCOL, RELAY_PROTOCOL_UNSEALED, type EnvelopeServiceInit, type SendOptions, type ReceivedMessage, type DeliveryReceipt } from './envelopes.js'
export { CapabilityIndex, CAPABILITY_PROTOCOL, toCid, type CapabilityIndexInit, type QueryOptions, type QueryReport } from './capability-index.js'
export { ANNOUNCE_KIND, signAnnouncement, verifyAnnouncement, type Announcement } from './announce.js'
