// Every route of the control API, one entry each (see contract.ts for what an entry means).
// A route registered on ApiServer without an entry here still works, but the contract test
// fails until it is described. Responses are described as far as they are stable; the rest are
// loose objects whose known fields are listed.
import { z } from 'zod'
import { manifestSchema } from '../core/scheduler/manifest.js'
import { trainingSpecSchema } from '../training/spec.js'
import { checkedByHandler, defineRoutes, idParam, queryInt } from './contract.js'

const jobParams = z.object({ id: idParam.meta({ description: 'a job id of this node' }) })
const chainJobParams = z.object({ id: idParam.meta({ description: 'a 32-byte chain job id (0x...), or a job id of this node' }) })
const dbcAmount = z.string().meta({ description: 'an amount in DBC, as decimal text' })
const weiAmount = z.string().regex(/^\d+$/).meta({ description: 'an amount in wei (10^-18 DBC), as whole-number text' })
const txHash = z.string().meta({ description: 'a transaction hash (0x...)' })
const location = z.object({ lat: z.number(), lon: z.number() })
const described = (description: string, fields: z.ZodRawShape = {}): z.ZodObject => z.looseObject(fields).meta({ description })

const jobStatus = z.looseObject({
  jobId: z.string(),
  name: z.string(),
  status: z.string().meta({ description: 'running, done, failed or cancelled' }),
  tasks: z.number().int(),
  done: z.number().int(),
  failed: z.number().int(),
  running: z.number().int().meta({ description: 'copies running on providers\' slots (at most each lease\'s slots)' }),
  ahead: z.number().int().optional().meta({ description: 'copies sent ahead of a free slot (read-ahead for tiny tasks), waiting at their provider; absent when none' }),
  queued: z.number().int(),
  billedCopies: z.number().int(),
  copiesByOutcome: z.record(z.string(), z.number()),
  createdAt: z.number(),
  updatedAt: z.number(),
  live: z.boolean(),
  summary: described('when the job has ended: providers used, retries, time, predicted and metered cost, payment').optional()
})
const trainingView = z.looseObject({
  jobId: z.string(),
  name: z.string().meta({ description: 'the manifest\'s name, else "training"' }),
  groupSize: z.number().int().optional().meta({ description: 'the members the spec asks for (members: those in the group now)' }),
  createdAt: z.number(),
  status: z.string(),
  round: z.number().int(),
  rounds: z.number().int(),
  loss: z.number().nullable(),
  accuracy: z.number().nullable(),
  members: z.array(z.string()),
  ranks: z.record(z.string(), z.number().int()).optional().meta({ description: 'each member\'s data shard (rank), while this node runs the job' }),
  refusals: z.array(z.unknown()),
  momentumOffBy: z.array(z.string()).optional().meta({ description: 'members whose invitation reply said they keep no optimizer state: no round with one of them averages the momentum' }),
  error: z.unknown().optional()
})
// one line of `dbc job logs` (src/jobs/task-logs.ts JobEvent)
const jobEvent = z.looseObject({
  key: z.string().meta({ description: 'stable across reads: a follower sends each key once' }),
  at: z.number().meta({ description: 'ms since the epoch' }),
  kind: z.enum(['submitted', 'placed', 'returned', 'task-failed', 'ended']),
  index: z.number().int().optional(),
  attempt: z.number().int().optional(),
  provider: z.string().optional(),
  reason: z.string().optional().meta({ description: 'placed: initial, redundant, retry, speculative, tie-break or spot-check' }),
  outcome: z.string().optional().meta({ description: 'returned: agreed, pending, unverified, failed, timeout, lost, wrong, ...' }),
  error: z.string().optional(),
  ms: z.number().optional(),
  status: z.string().optional(),
  done: z.number().int().optional(),
  failed: z.number().int().optional(),
  log: z.object({
    text: z.string().meta({ description: 'as the provider sent it (UTF-8 decoded): strip control characters before printing' }),
    bytes: z.number().int().meta({ description: 'what the task wrote to stderr in all' }),
    kept: z.number().int(),
    truncated: z.boolean().meta({ description: 'true: only the last `kept` bytes were kept' })
  }).optional()
})
const probe = z.looseObject({ status: z.string() }).meta({ description: 'the checks made and their outcome' })

export const routes = defineRoutes({
  // ---- probes and the dashboard's door (no token)
  'GET /healthz': { method: 'GET', path: '/healthz', tag: 'health', public: true, summary: 'Liveness: 200 while the process serves requests', response: probe },
  'GET /readyz': { method: 'GET', path: '/readyz', tag: 'health', public: true, summary: 'Readiness: 200 once joined to the network and the chain answers, else 503', response: probe },
  'GET /dashboard/login': {
    method: 'GET',
    path: '/dashboard/login',
    tag: 'dashboard',
    public: true,
    summary: 'Trade a one-time login link for a dashboard session cookie',
    description: 'A valid `t` answers 302 to /dashboard/ with `Set-Cookie: dbc_session=...; HttpOnly; SameSite=Strict; Path=/`; an unknown, used or expired one answers 401 with an HTML page. The cookie authorises GET routes under /v1 and the dashboard files.',
    query: z.object({ t: z.string().max(128).optional().meta({ description: 'the secret from POST /v1/dashboard/link' }) }),
    response: z.string().meta({ description: 'a redirect, or an HTML page' })
  },

  // ---- the node
  'GET /v1/id': { method: 'GET', path: '/v1/id', tag: 'node', summary: 'This node\'s peer id, public key and listen addresses', response: z.object({ peerId: z.string(), publicKey: z.string().meta({ description: 'base64' }), addrs: z.array(z.string()) }) },
  'GET /v1/status': {
    method: 'GET',
    path: '/v1/status',
    tag: 'node',
    summary: 'The node\'s state: identity, uptime, connections, DHT, guard, and one section per subsystem',
    response: z.looseObject({ peerId: z.string(), pid: z.number().int(), version: z.string(), uptimeMs: z.number(), addrs: z.array(z.string()), location: location.nullable(), connections: z.number().int(), peers: z.number().int(), dht: z.looseObject({ mode: z.string(), routingTable: z.number() }), dataDir: z.string(), metrics: z.string().nullable() })
  },
  'GET /v1/peers': { method: 'GET', path: '/v1/peers', tag: 'network', summary: 'Peers connected now, one row each', response: z.object({ peers: z.array(z.object({ peerId: z.string(), addr: z.string(), direction: z.string(), openedAt: z.number() })) }) },
  'POST /v1/ping': {
    method: 'POST',
    path: '/v1/ping',
    tag: 'network',
    summary: 'Ping a peer (by peer id or multiaddr) and report the round-trip times',
    body: z.object({ peer: z.string().min(1).max(1024).meta({ description: 'a peer id (12D3Koo...) or a multiaddr' }), count: z.number().int().optional().meta({ description: 'pings to send, 1 to 100 (default 3)' }) }),
    response: z.object({ peer: z.string(), rtts: z.array(z.number()) }),
    errors: ['BAD_PEER', 'PING_FAILED']
  },
  'GET /v1/dht/find-peer/:peer': { method: 'GET', path: '/v1/dht/find-peer/:peer', tag: 'network', summary: 'Look a peer up in the DHT', params: z.object({ peer: idParam }), response: z.object({ peerId: z.string(), addrs: z.array(z.string()), ms: z.number() }), errors: ['BAD_PEER', 'NOT_FOUND'] },
  'POST /v1/stop': {
    method: 'POST',
    path: '/v1/stop',
    tag: 'node',
    summary: 'Stop the node (it answers first): the tasks running finish first (up to drainS), new leases are refused meanwhile; `now` stops at once (also during a drain)',
    body: z.object({ now: z.boolean().optional(), drainS: z.number().min(0).max(600).optional().meta({ description: 'seconds the running tasks may take (default 30)' }) }),
    response: z.object({ stopping: z.literal(true), draining: z.number().int().optional().meta({ description: 'tasks running that finish first' }), drainS: z.number().optional() })
  },
  'POST /v1/dashboard/link': { method: 'POST', path: '/v1/dashboard/link', tag: 'dashboard', summary: 'A one-time dashboard login link (valid 5 minutes, works once)', response: z.object({ url: z.string() }) },
  'GET /v1/dashboard/network': { method: 'GET', path: '/v1/dashboard/network', tag: 'dashboard', summary: 'The Network page: this node, its peers and known providers with locations, links with RTTs, table sizes', response: described('nodes with locations (declared or Vivaldi-placed), links coloured by RTT, routing table and membership view sizes') },
  'GET /v1/dashboard/jobs/:id': { method: 'GET', path: '/v1/dashboard/jobs/:id', tag: 'dashboard', summary: 'The Jobs page for one grid job: tasks by state and provider, placement reasons', params: jobParams, query: z.object({ limit: queryInt(0, 1_000_000, 'task rows at most (default 400, capped at 5000)') }), response: described('the job\'s tasks by state and provider, each task\'s placement and reason') },
  'GET /v1/dashboard/served': { method: 'GET', path: '/v1/dashboard/served', tag: 'dashboard', summary: 'The work this node does for others: slots now, and per job what its payer owes and signed', response: z.looseObject({ slots: z.unknown().optional(), jobs: z.array(z.unknown()) }) },
  'GET /v1/dashboard/node': { method: 'GET', path: '/v1/dashboard/node', tag: 'dashboard', summary: 'The Node page: identity, addresses, reachability with advice, slots, executors, GPUs, version', response: z.looseObject({ peerId: z.string(), version: z.string(), addrs: z.array(z.string()), location: location.nullable(), reachability: z.unknown().optional(), slots: z.unknown().optional(), executors: z.array(z.unknown()), gpus: z.array(z.unknown()) }) },
  'GET /v1/events': { method: 'GET', path: '/v1/events', tag: 'dashboard', stream: true, summary: 'The node\'s own events for the dashboard: a snapshot, then a line whenever peers, jobs, training or slots change', response: z.looseObject({ type: z.string().meta({ description: 'peers, job, training, slots or error' }) }) },
  'GET /v1/openapi.json': { method: 'GET', path: '/v1/openapi.json', tag: 'node', summary: 'This document', response: described('an OpenAPI 3.1 document') },

  // ---- the overlay
  'GET /v1/peers/near': {
    method: 'GET',
    path: '/v1/peers/near',
    tag: 'network',
    summary: 'Known peers nearest first, with predicted (Vivaldi or geographic) and measured RTTs',
    query: z.object({ n: queryInt(1, 10_000, 'rows to answer (default 20)') }),
    response: z.object({ peers: z.array(z.looseObject({ peerId: z.string(), predictedRttMs: z.number().nullable().optional(), measuredRttMs: z.number().nullable().optional(), distanceKm: z.number().nullable().optional(), location: location.nullable() })) })
  },
  'GET /v1/capabilities': {
    method: 'GET',
    path: '/v1/capabilities',
    tag: 'network',
    summary: 'Find providers of a capability near a place through the DHT\'s capability index',
    query: z.object({
      capability: z.string().max(128).optional().meta({ description: 'e.g. cpu, gpu:RTX4090 (default cpu)' }),
      lat: z.coerce.number().min(-90).max(90).optional(),
      lon: z.coerce.number().min(-180).max(180).optional(),
      want: queryInt(1, 1000, 'results wanted (default 10)'),
      fresh: z.enum(['0', '1']).optional().meta({ description: '1 skips the cache' })
    }),
    response: z.looseObject({ capability: z.string(), ms: z.number(), fromCache: z.boolean(), results: z.array(z.looseObject({ peerId: z.string(), distanceKm: z.number(), lat: z.number(), lon: z.number(), gpus: z.array(z.string()), cpuCores: z.number() })) })
  },

  // ---- grid jobs
  'POST /v1/jobs': {
    method: 'POST',
    path: '/v1/jobs',
    tag: 'jobs',
    summary: 'Submit a grid job',
    body: z.object({
      manifest: checkedByHandler(manifestSchema, 'a bad manifest answers MANIFEST_INVALID with one line per field'),
      baseDir: z.string().max(4096).optional().meta({ description: 'the folder the manifest\'s relative paths start from' }),
      allowTopUp: z.boolean().optional().meta({ description: 'allow the escrow to grow past what was first locked' })
    }),
    response: z.object({ jobId: z.string() }),
    errors: ['MANIFEST_INVALID']
  },
  'GET /v1/jobs': { method: 'GET', path: '/v1/jobs', tag: 'jobs', summary: 'Grid jobs submitted by this node', response: z.object({ jobs: z.array(jobStatus) }) },
  'GET /v1/jobs/:id': { method: 'GET', path: '/v1/jobs/:id', tag: 'jobs', summary: 'A grid job\'s status: task counts, copies by outcome, summary', params: jobParams, response: jobStatus, errors: ['NOT_FOUND'] },
  'GET /v1/jobs/:id/explain': {
    method: 'GET',
    path: '/v1/jobs/:id/explain',
    tag: 'jobs',
    summary: 'Why a job\'s tasks went where they went (and one task\'s attempts with ?task=N)',
    params: jobParams,
    query: z.object({ task: queryInt(0, 2 ** 31 - 1, 'a task index') }),
    response: z.looseObject({ jobId: z.string(), status: z.string(), placement: described('offers asked, refused and chosen; candidates: offer requests sent and not answered (a few providers named, with why)').optional(), failures: z.array(z.object({ index: z.number().int(), reason: z.string() })), task: described('one task\'s copies, providers and outcomes').optional() })
  },
  'GET /v1/jobs/:id/results': { method: 'GET', path: '/v1/jobs/:id/results', tag: 'jobs', summary: 'A finished job\'s task outputs', params: jobParams, response: z.object({ jobId: z.string(), results: z.array(z.object({ index: z.number().int(), hash: z.string(), output: z.string().meta({ description: 'base64' }) })) }) },
  'POST /v1/jobs/:id/cancel': { method: 'POST', path: '/v1/jobs/:id/cancel', tag: 'jobs', summary: 'Cancel a running job; answers its status', params: jobParams, response: jobStatus },
  'POST /v1/jobs/:id/settle': { method: 'POST', path: '/v1/jobs/:id/settle', tag: 'payment', summary: 'Re-send each provider\'s latest signed voucher for a job', params: jobParams, response: described('per provider: what was re-sent') },
  'GET /v1/jobs/:id/payments': { method: 'GET', path: '/v1/jobs/:id/payments', tag: 'payment', summary: 'What this node paid for a job: escrow, vouchers signed per provider', params: jobParams, response: described('escrow, signed and refused amounts per provider (DBC as text)') },
  'POST /v1/jobs/:id/top-up': {
    method: 'POST',
    path: '/v1/jobs/:id/top-up',
    tag: 'payment',
    summary: 'Add escrow to a running job',
    params: jobParams,
    body: z.object({ amount: z.union([z.string().max(80), z.number()]).meta({ description: 'DBC' }), allowTopUp: z.boolean().optional().meta({ description: 'confirm a top-up past the manifest\'s budget.total' }) }),
    response: z.object({ jobId: z.string(), added: dbcAmount, deposited: dbcAmount, unit: z.literal('DBC') })
  },
  'GET /v1/jobs/:id/events': {
    method: 'GET',
    path: '/v1/jobs/:id/events',
    tag: 'jobs',
    stream: true,
    summary: 'Progress events until the job ends (NDJSON, or SSE with Accept: text/event-stream)',
    params: jobParams,
    response: z.looseObject({ type: z.enum(['progress', 'end', 'error']), status: z.unknown().optional(), progress: z.unknown().optional(), tasks: z.number().optional(), done: z.number().optional(), failed: z.number().optional(), waiting: z.string().optional().meta({ description: 'why queued tasks do not run now (busy providers, or the refusals of a search that fails the tasks unless one answers), while that holds' }) })
  },

  'GET /v1/jobs/:id/logs': { method: 'GET', path: '/v1/jobs/:id/logs', tag: 'jobs', summary: 'A job\'s events and what each returned copy wrote to stderr (its last 64 KiB)', params: jobParams, response: z.looseObject({ jobId: z.string(), status: z.string(), events: z.array(jobEvent) }) },
  'GET /v1/jobs/:id/logs/follow': {
    method: 'GET',
    path: '/v1/jobs/:id/logs/follow',
    tag: 'jobs',
    stream: true,
    summary: 'A job\'s log events as they happen, until the job ends (NDJSON, or SSE with Accept: text/event-stream)',
    params: jobParams,
    response: z.looseObject({ type: z.enum(['event', 'end', 'error']), event: jobEvent.optional(), status: z.unknown().optional() })
  },

  // ---- training
  'POST /v1/training': {
    method: 'POST',
    path: '/v1/training',
    tag: 'training',
    summary: 'Submit a training job',
    body: z.object({
      spec: checkedByHandler(trainingSpecSchema, 'a bad spec answers TRAINING_SPEC_INVALID naming the field; one that names a program TRAINING_SPEC_NAMES_PROGRAM'),
      peers: z.array(z.string().max(128)).max(1024).optional().meta({ description: 'the members (default: the nearest peers serving training)' }),
      allowTopUp: z.boolean().optional(),
      name: z.string().max(200).optional().meta({ description: 'a name to list the job by (a manifest\'s name:; printable, kept to 64 characters)' })
    }),
    response: z.object({ jobId: z.string() }),
    errors: ['TRAINING_SPEC_INVALID', 'TRAINING_SPEC_NAMES_PROGRAM', 'NO_PEERS', 'PEERS_BUSY']
  },
  'GET /v1/training': { method: 'GET', path: '/v1/training', tag: 'training', summary: 'Training jobs submitted by this node', response: z.object({ jobs: z.array(trainingView) }) },
  'GET /v1/training/:id': { method: 'GET', path: '/v1/training/:id', tag: 'training', summary: 'A training job: status and the history of its rounds', params: jobParams, response: trainingView.extend({ history: z.array(z.looseObject({ round: z.number().int(), loss: z.number() })) }) },
  'GET /v1/training/:id/results': {
    method: 'GET',
    path: '/v1/training/:id/results',
    tag: 'training',
    summary: 'A finished training job\'s model and accuracy',
    params: jobParams,
    response: z.object({ jobId: z.string(), accuracy: z.number(), members: z.array(z.string()), rounds: z.number().int(), receipts: z.number(), model: z.string().meta({ description: 'base64 dbc-model-v2' }) }),
    errors: ['NOT_FINISHED']
  },
  'POST /v1/training/:id/cancel': { method: 'POST', path: '/v1/training/:id/cancel', tag: 'training', summary: 'Cancel a running training job: its members are told to stop, the rounds done are paid; answers its status', params: jobParams, response: trainingView, errors: ['NOT_RUNNING'] },
  'POST /v1/training/:id/members': { method: 'POST', path: '/v1/training/:id/members', tag: 'training', summary: 'Invite a peer into a running training job', params: jobParams, body: z.object({ peer: z.string().min(1).max(128) }), response: z.object({ invited: z.unknown().optional() }), errors: ['NOT_RUNNING'] },
  'GET /v1/training/:id/events': {
    method: 'GET',
    path: '/v1/training/:id/events',
    tag: 'training',
    stream: true,
    summary: 'One event per round until the job ends (NDJSON, or SSE with Accept: text/event-stream)',
    params: jobParams,
    response: z.looseObject({ type: z.enum(['progress', 'end', 'error']), round: z.number().int().optional(), loss: z.number().optional(), accuracy: z.number().nullable().optional(), members: z.unknown().optional(), dropped: z.unknown().optional(), roundMs: z.number().optional() })
  },

  // ---- chain and payment
  'GET /v1/chain/status': { method: 'GET', path: '/v1/chain/status', tag: 'chain', summary: 'The chain bridge: account, balance, stake, outbox, redeems', response: described('chain id, contract, account, balance and stake (DBC), reachability, outbox and redeem counts', { reachable: z.boolean() }) },
  'GET /v1/wallet': { method: 'GET', path: '/v1/wallet', tag: 'chain', summary: 'This node\'s account, balance and stake', response: z.looseObject({ account: z.string(), balance: z.unknown().optional(), stake: z.unknown().optional(), chainId: z.unknown().optional(), contract: z.unknown().optional(), reachable: z.boolean(), lastError: z.unknown().optional() }) },
  'GET /v1/earnings': { method: 'GET', path: '/v1/earnings', tag: 'chain', summary: 'What this node earned as a provider: signed, redeemed and pending per job', response: described('totals and one row per job (DBC as text)') },
  'GET /v1/chain/stake-quote': { method: 'GET', path: '/v1/chain/stake-quote', tag: 'chain', summary: 'The stake needed for N GPUs', query: z.object({ gpus: z.coerce.number().int().min(1).max(20_000).meta({ description: 'GPUs to stake for' }) }), response: z.looseObject({ networkGpus: z.unknown().optional(), amount: z.unknown().optional() }) },
  'POST /v1/chain/stake': { method: 'POST', path: '/v1/chain/stake', tag: 'chain', summary: 'Stake for N GPUs', body: z.object({ gpus: z.number().int().min(1).max(20_000), provider: z.string().max(64).optional() }), response: z.looseObject({ txHash, gpus: z.number(), amount: z.unknown().optional() }) },
  'POST /v1/chain/unstake': { method: 'POST', path: '/v1/chain/unstake', tag: 'chain', summary: 'Withdraw the stake', response: z.looseObject({ txHash, amount: z.unknown().optional() }) },
  'POST /v1/chain/deposit': {
    method: 'POST',
    path: '/v1/chain/deposit',
    tag: 'chain',
    summary: 'Lock escrow for a job',
    body: z.object({ jobId: idParam, amount: z.union([weiAmount, z.number().int().min(0)]), deadline: z.number().optional(), disputeWindow: z.number().optional() }),
    response: described('the deposit transaction and amount (wei)')
  },
  'GET /v1/chain/jobs/:id': { method: 'GET', path: '/v1/chain/jobs/:id', tag: 'chain', summary: 'A job\'s payments on chain: escrow, signed per provider, redeemed', params: chainJobParams, response: described('payer, escrow, and per provider the signed and redeemed amounts') },
  'POST /v1/chain/jobs/:id/close': { method: 'POST', path: '/v1/chain/jobs/:id/close', tag: 'chain', summary: 'Close a job\'s escrow (starts the dispute window)', params: chainJobParams, response: z.looseObject({ txHash }) },
  'POST /v1/chain/jobs/:id/refund': { method: 'POST', path: '/v1/chain/jobs/:id/refund', tag: 'chain', summary: 'Take back what a closed job\'s escrow has left', params: chainJobParams, response: z.looseObject({ txHash, amount: z.unknown().optional() }) },
  'POST /v1/chain/redeem': { method: 'POST', path: '/v1/chain/redeem', tag: 'chain', summary: 'Run the voucher redeem loop now', response: described('what the redeem pass sent and confirmed') }
})

export type Routes = typeof routes
export type RouteKey = keyof Routes
