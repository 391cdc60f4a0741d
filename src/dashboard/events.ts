// GET /v1/events: the node's own event stream for the dashboard (SSE when asked with
// Accept: text/event-stream). Each connection gets a snapshot, then a line whenever something
// it shows changes: peers (libp2p connect/disconnect), grid jobs and training jobs (their
// status views, compared each second: the job and training subsystems write them), slots.
import type { ApiRequest } from '../api/server.js'

export interface EventSources {
  /** Wakes the stream early (peer connect/disconnect, slot events); returns an unsubscribe. */
  subscribe: (wake: () => void) => () => void
  peers: () => { connections: number, peers: number }
  jobs: () => unknown[]
  training: () => unknown[]
  slots: () => unknown
}

const POLL_MS = 1000

export async function streamNodeEvents (req: ApiRequest, send: (event: unknown) => void, src: EventSources): Promise<void> {
  const last = new Map<string, string>()
  // a job's line goes out when its view changed; the first round sends all of them
  const emit = (type: string, key: string, value: unknown): void => {
    const text = JSON.stringify(value)
    if (last.get(`${type}:${key}`) === text) return
    last.set(`${type}:${key}`, text)
    send({ type, ...(typeof value === 'object' && value !== null ? value : { value }) })
  }
  let wake: () => void = () => {}
  const unsubscribe = src.subscribe(() => { wake() })
  const onAbort = (): void => { wake() }
  req.signal.addEventListener('abort', onAbort, { once: true })
  try {
    send({ type: 'hello', at: Date.now() })
    while (!req.signal.aborted) {
      emit('peers', '', src.peers())
      for (const j of src.jobs() as Array<{ jobId: string }>) emit('job', j.jobId, j)
      for (const t of src.training() as Array<{ jobId: string }>) emit('training', t.jobId, t)
      emit('slots', '', src.slots())
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, POLL_MS)
        wake = () => { clearTimeout(t); resolve() }
      })
    }
  } finally {
    req.signal.removeEventListener('abort', onAbort)
    unsubscribe()
  }
}
