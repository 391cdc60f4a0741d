import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { resolveCity, resolveLocation, foldName } from '../../../src/geo/cities.js'
import { ConfigError } from '../../../src/errors.js'

test('resolves names case-insensitively to the most populous city', () => {
  const tokyo = resolveCity('tokyo')
  assert.is(tokyo.country, 'JP')
  assert.ok(Math.abs(tokyo.lat - 35.69) < 0.1 && Math.abs(tokyo.lon - 139.69) < 0.1)
  assert.is(resolveCity('Paris').country, 'FR')
  assert.is(resolveCity('Paris, US').country, 'US')
  assert.is(resolveCity('sao paulo').country, 'BR')
  assert.is(resolveCity('New York').name, 'New York City')
})

test('coordinates pass through resolveLocation', () => {
  assert.equal(resolveLocation('10.5,-20'), { lat: 10.5, lon: -20 })
  assert.ok(resolveLocation('Berlin').name?.startsWith('Berlin'))
})

test('unknown names fail with close matches', () => {
  try {
    resolveCity('Tokio')
    assert.unreachable('should throw')
  } catch (err) {
    assert.instance(err, ConfigError)
    assert.match((err as Error).message, /Tokyo, JP/)
    assert.ok((err as ConfigError).hint !== undefined)
  }
  assert.is(foldName('  São-Paulo '), 'sao paulo')
})

test.run()
