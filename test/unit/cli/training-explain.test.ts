// `dbc job explain` of a training job printed only its routing and routes (helper user16 #8): the
// members, who dropped and refusals were only in `dbc job status`. Now it shows the group: members
// by rank with their routes, each drop with its round and whether the peer is back, the refusals
// with their codes. Against a stand-in daemon answering as the node's GET /v1/training/:id does.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const JOB = 'a7' + '0'.repeat(62)
const A = '12D3KooWLcAnXiM93Zeh1cEE9BYgFYue37K2dLHCDZPSGnuu5off'
const B = '12D3KooWPuvxcDyJXqndSN3WRUJScqdmAJ3XWsQTWvJ3Zp9dk2bH'
const C = '12D3KooWGc5WZeF7ZQ12uUPHTaqDERzEYG7sc3ytddN3Veqh8975'
const R = '12D3KooWJX6LCJNS2E4kQ5yijKWWY2haNJ2berp7pK3S19bFhZXx'
const view = {
  jobId: JOB, name: 'mnist-mlp', status: 'running', round: 5, rounds: 30, routing: 'auto',
  members: [B, A], ranks: { [A]: 0, [B]: 1 },
  // A dropped in round 2 (from 1) and came back; C dropped twice and is out
  history: [{ round: 0, members: [A, B, C], dropped: [] }, { round: 1, members: [B, C], dropped: [A] }, { round: 2, members: [A, B, C], dropped: [] }, { round: 3, members: [A, B], dropped: [C] }, { round: 4, members: [A, B], dropped: [] }, { round: 5, members: [A, B], dropped: [] }].map(h => ({ ...h, loss: 0.5 })),
  refusals: [{ peer: R, code: 'PRICE_ABOVE_CAP', reason: 'this member asks 30 DBC per CPU-hour, the job pays at most 10\u001b[31m' }],
  routes: { [A]: { kind: 'direct', relays: [], facts: 'direct connection we opened' }, [B]: { kind: 'relayed', relay: R, relays: [R], facts: 'no direct connection after 0 ms' } }
}
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-train-explain-', (_req, _res, { url, json }) => {
    if (url === '/v1/jobs') return json(200, { jobs: [] })
    if (url === '/v1/training') return json(200, { jobs: [view] })
    if (url === `/v1/training/${JOB}`) return json(200, view)
    json(404, { error: { code: 'NOT_FOUND', message: `no job ${url}` } })
  })
})
test.after(async () => { await node.close() })

test('explain of a training job lists its members by rank with routes, its drops and its refusals', async () => {
  const r = await node.dbc('job', 'explain', JOB)
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, [
    `training job ${JOB} (mnist-mlp): running, round 6/30, routing auto`,
    'members (2, by rank: each one\'s data shard):',
    `  rank 0  ${A}: direct (direct connection we opened)`,
    `  rank 1  ${B}: relayed via ${R} (no direct connection after 0 ms)`,
    'dropped (2 drops; 1 peer not back):',
    `  round 2: ${A}, back in the group since`,
    `  round 4: ${C}, not back`,
    'refused (1):',
    `  ${R}: PRICE_ABOVE_CAP: this member asks 30 DBC per CPU-hour, the job pays at most 10`, // the escape sequence is gone
    ''
  ].join('\n'))
})

test('--json has the same group', async () => {
  const r = await node.dbc('job', 'explain', JOB, '--json')
  assert.is(r.code, 0, r.stderr)
  const e = JSON.parse(r.stdout)
  assert.equal(e.members.map((m: any) => [m.rank, m.peer, m.route.kind]), [[0, A, 'direct'], [1, B, 'relayed']])
  assert.equal(e.drops, [{ round: 1, peer: A, back: true }, { round: 3, peer: C, back: false }])
  assert.equal(e.refusals.map((x: any) => x.code), ['PRICE_ABOVE_CAP'])
})

test.run()
