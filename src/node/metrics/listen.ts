// The metrics address as the config gives it (kept apart so the config loader imports no server).

/** "PORT", "HOST:PORT" or "[V6]:PORT" → host and port (host 127.0.0.1 when left out). */
export function parseListen (s: string): { host: string, port: number } | undefined {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost):)?(\d{1,5})$/.exec(s.trim())
  if (m === null) return undefined
  const port = Number(m[2])
  if (port > 65535) return undefined
  const host = m[1] === undefined ? '127.0.0.1' : m[1].replace(/^\[|\]$/g, '')
  return { host, port }
}
