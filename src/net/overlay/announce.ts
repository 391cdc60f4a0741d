// Signed gossip announcements (dbc.membership.v1.Announcement): the origin signs
// "dbc/announce/v1\0" || origin || id || created_at || kind || body.
import { dbc } from '../../wire/gen/wire.js'
import { ed25519KeyFromPeerIdBytes } from '../../core/identity/index.js'
import { nodeSuite, ed25519Seed } from '../../crypto/suite.js'

export type Announcement = dbc.membership.v1.Announcement

export const ANNOUNCE_KIND = { capability: 1, leave: 2, job: 3 } as const

const DOMAIN = new TextEncoder().encode('dbc/announce/v1\0')

function signedBytes (a: dbc.membership.v1.Announcement.$Properties): Uint8Array {
  const origin = a.origin ?? new Uint8Array(0); const id = a.id ?? new Uint8Array(0); const body = a.body ?? new Uint8Array(0)
  const out = new Uint8Array(DOMAIN.length + 2 + origin.length + 2 + id.length + 8 + 4 + body.length)
  const v = new DataView(out.buffer)
  let o = 0
  out.set(DOMAIN); o += DOMAIN.length
  v.setUint16(o, origin.length); o += 2; out.set(origin, o); o += origin.length
  v.setUint16(o, id.length); o += 2; out.set(id, o); o += id.length
  v.setFloat64(o, a.createdAt ?? 0); o += 8
  v.setUint32(o, a.kind ?? 0); o += 4
  out.set(body, o)
  return out
}

export function signAnnouncement (secretKey: Uint8Array, a: { origin: Uint8Array, id: Uint8Array, ttl: number, createdAt: number, kind: number, body: Uint8Array }): Announcement {
  return dbc.membership.v1.Announcement.create({ ...a, signature: nodeSuite.sign(ed25519Seed(secretKey), signedBytes(a)) })
}

export function verifyAnnouncement (a: Announcement): boolean {
  const key = ed25519KeyFromPeerIdBytes(a.origin)
  return key !== undefined && a.id.length > 0 && a.id.length <= 64 && nodeSuite.verify(key, signedBytes(a), a.signature)
}
