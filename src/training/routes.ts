// The training subsystem's control API routes (/v1/training...): submit, list, one job, its
// results, cancel, invite a member, and its event stream. The subsystem (subsystem.ts) owns the jobs.
import type { ApiServer } from '../api/server.js'
import { TrainingError } from './worker.js'
import type { TrainingJob } from './subsystem.js'

/** What the routes ask of the training subsystem. */
export interface TrainingRoutesTarget {
  submit: (spec: unknown, peers?: string[], opts?: { allowTopUp?: boolean, name?: string }) => Promise<string>
  cancel: (jobId: string) => Promise<Record<string, unknown>>
  jobs: () => Iterable<[string, TrainingJob]>
  /** The job, or a NOT_FOUND TrainingError. */
  job: (id: string) => TrainingJob
  view: (id: string, j: TrainingJob) => Record<string, unknown>
  /** A finished job's model from the node's store (an ended job keeps none in memory). */
  storedModel: (id: string) => Uint8Array | undefined
}

export function trainingRoutes (api: ApiServer, t: TrainingRoutesTarget): void {
  api.route('POST', '/v1/training', async (req) => {
    const body = (req.body ?? {}) as { spec?: unknown, peers?: string[], allowTopUp?: boolean, name?: string }
    return { jobId: await t.submit(body.spec ?? {}, body.peers, { allowTopUp: body.allowTopUp === true, ...(body.name !== undefined ? { name: body.name } : {}) }) }
  })
  api.route('GET', '/v1/training', () => ({ jobs: [...t.jobs()].map(([id, j]) => t.view(id, j)) }))
  api.route('GET', '/v1/training/:id', (req) => ({ ...t.view(req.params.id, t.job(req.params.id)), history: t.job(req.params.id).history }))
  api.route('GET', '/v1/training/:id/results', (req) => {
    const j = t.job(req.params.id)
    if (j.result === undefined) throw new TrainingError('NOT_FINISHED', `training job ${req.params.id} is ${j.status}`, { hint: j.status === 'running' ? 'wait for it to finish' : j.error?.message })
    const r = j.result
    const model = r.model ?? t.storedModel(req.params.id)
    if (model === undefined) throw new TrainingError('MODEL_MISSING', `the model of training job ${req.params.id} is not in this node's store`, { hint: 'run the job again' })
    return { jobId: req.params.id, accuracy: r.accuracy, members: r.members, rounds: r.rounds, receipts: r.receipts, model: Buffer.from(model).toString('base64') }
  })
  api.route('POST', '/v1/training/:id/cancel', async (req) => await t.cancel(req.params.id))
  api.route('POST', '/v1/training/:id/members', (req) => {
    const j = t.job(req.params.id)
    const peer = (req.body as { peer?: unknown } | undefined)?.peer
    if (typeof peer !== 'string' || peer.length === 0 || peer.length > 128) throw new TrainingError('BAD_REQUEST', 'peer must be a peer id')
    if (j.status !== 'running' || j.session === undefined) throw new TrainingError('NOT_RUNNING', `training job ${req.params.id} is ${j.status}`)
    return { invited: j.session.addMember(peer) }
  })
  api.streamRoute('GET', '/v1/training/:id/events', async (req, send) => {
    const j = t.job(req.params.id)
    let sent = 0
    let wake: () => void = () => {}
    const waiter = (): void => { wake() }
    j.waiters.add(waiter)
    try {
      for (;;) {
        while (sent < j.history.length) { const p = j.history[sent++]; send({ type: 'progress', round: p.round, loss: p.loss, accuracy: Number.isFinite(p.accuracy) ? p.accuracy : null, members: p.members.length, dropped: p.dropped, roundMs: p.roundMs }) }
        if (j.status !== 'running' || req.signal.aborted) { send({ type: 'end', ...t.view(req.params.id, j) }); return }
        await new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, 1000) })
      }
    } finally {
      j.waiters.delete(waiter)
    }
  })
}
