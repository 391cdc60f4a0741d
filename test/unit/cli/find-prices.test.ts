// `dbc find cpu` listed a CPU-only provider's price as "0/0.05" DBC per GPU/CPU-hour: the record's
// GPU price is 0 when no GPU is offered, read as free GPU-hours (the user walk of session 14; its
// `dbc node status` says 1 DBC/GPU-hour). A provider with no GPU shows "-" for it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const peer = (id: string, gpus: string[], priceGpuHour: number): Record<string, unknown> =>
  ({ peerId: id, distanceKm: 9331, predictedRttMs: 0.4, gpus, cpuCores: 2, priceGpuHour, priceCpuHour: 0.05, executors: ['wasm'] })
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-find-', (_req, _res, { url, json }) => {
    if (url.startsWith('/v1/capabilities?')) return json(200, { results: [peer('12D3KooWcpu', [], 0), peer('12D3KooWgpu', ['RTX4090:24GiB'], 300)], ms: 12, fromCache: false })
    json(404, { error: { code: 'NOT_FOUND', message: url } })
  })
})

test.after(async () => { await node.close() })

test('no GPU: no GPU price; a GPU provider keeps its price', async () => {
  const r = await node.dbc('find', 'cpu')
  assert.is(r.code, 0, r.stderr)
  const line = (id: string): string => r.stdout.split('\n').find(l => l.startsWith(id)) ?? ''
  assert.match(line('12D3KooWcpu'), /\s-\/0\.05\s/)
  assert.match(line('12D3KooWgpu'), /\s300\/0\.05\s/)
})

test.run()
