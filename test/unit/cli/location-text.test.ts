// `dbc node status` names a city's country (helper user16's walk): `--location Virginia` resolves to
// Virginia, ZA (the most populous place of that name in the bundled list) and status printed only
// "Virginia -28.10391,26.86593", so an operator meaning the US state could not tell.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { locationText } from '../../../src/core/geo/location.js'
import { statusText } from '../../../src/cli/node-status.js'
import { table } from '../../../src/cli/output.js'
import { resolveLocation } from '../../../src/geo/cities.js'

test('status shows the resolved city with its country', () => {
  const virginia = resolveLocation('Virginia')
  const status = { peerId: 'p', pid: 1, uptimeMs: 0, location: { ...virginia, name: 'Virginia', country: 'ZA' }, peers: 0, connections: 0, dht: { mode: 'server', routingTable: 0 }, dataDir: '/d', addrs: [], metrics: null }
  assert.match(statusText(status, table), /location\s+Virginia, ZA -28\.\d+,26\.\d+/)
})

test('locationText: a name that already carries its country, coordinates only, undeclared', () => {
  assert.is(locationText({ name: 'Tokyo, JP', country: 'JP', lat: 35.6, lon: 139.7 }), 'Tokyo, JP 35.6,139.7')
  assert.is(locationText({ lat: 1, lon: 2 }), '1,2')
  assert.is(locationText(null), 'undeclared')
})

test.run()
