// Who may look at the dashboard: a one-time login link (printed by `dbc dashboard`, which
// holds the API token) is traded for a session cookie. Both are bounded so a flood of link
// requests or logins cannot grow memory; the clock is injected so the expiry rules are testable.
import { randomBytes } from 'node:crypto'

export const LOGIN_LINK_TTL_MS = 5 * 60_000
export const SESSION_IDLE_MS = 12 * 60 * 60_000
export const MAX_SESSIONS = 32
/** Live, unused links kept at once; the oldest is dropped first (a person uses the newest). */
export const MAX_LOGIN_LINKS = 16
export const SESSION_COOKIE = 'dbc_session'

export interface DashboardAuthInit {
  now?: () => number
  linkTtlMs?: number
  sessionIdleMs?: number
  maxSessions?: number
}

export class DashboardAuth {
  private readonly now: () => number
  private readonly linkTtlMs: number
  private readonly sessionIdleMs: number
  private readonly maxSessions: number
  /** one-time login secret -> expiry time (Map keeps insertion order: first is oldest) */
  private readonly links = new Map<string, number>()
  /** session id -> last use; re-inserted on use, so the first entry is the least recently used */
  private readonly sessions = new Map<string, number>()

  constructor (init: DashboardAuthInit = {}) {
    this.now = init.now ?? Date.now
    this.linkTtlMs = init.linkTtlMs ?? LOGIN_LINK_TTL_MS
    this.sessionIdleMs = init.sessionIdleMs ?? SESSION_IDLE_MS
    this.maxSessions = init.maxSessions ?? MAX_SESSIONS
  }

  /** A fresh single-use login secret (32 random bytes, hex), valid for linkTtlMs. */
  issueLink (): string {
    const t = randomBytes(32).toString('hex')
    this.links.set(t, this.now() + this.linkTtlMs)
    while (this.links.size > MAX_LOGIN_LINKS) this.links.delete(this.links.keys().next().value as string)
    return t
  }

  /** Trades a login secret for a new session id; undefined when it is unknown, used or expired. */
  redeemLink (t: string): string | undefined {
    const expires = this.links.get(t)
    if (expires === undefined) return undefined
    this.links.delete(t)
    if (this.now() > expires) return undefined
    const now = this.now()
    this.pruneSessions(now)
    const id = randomBytes(32).toString('hex')
    this.sessions.set(id, now)
    while (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value as string)
    return id
  }

  /** True for a live session (and refreshes its idle timer). */
  checkSession (id: string | undefined): boolean {
    if (id === undefined || id === '') return false
    const last = this.sessions.get(id)
    if (last === undefined) return false
    const now = this.now()
    this.sessions.delete(id)
    if (now - last > this.sessionIdleMs) return false
    this.sessions.set(id, now)
    return true
  }

  get sessionCount (): number { return this.sessions.size }

  private pruneSessions (now: number): void {
    for (const [id, last] of this.sessions) if (now - last > this.sessionIdleMs) this.sessions.delete(id)
  }
}

/** The value of one cookie from a Cookie header, or undefined. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}
