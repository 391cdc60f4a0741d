import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { resolveCity, resolveLocation, foldName, namesakes, ambiguousLocationWarning } from '../../../src/geo/cities.js'
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

// user16 #11: `--location Virginia` resolved to South Africa silently
test('a name shared by places in other countries is named with them; one that dwarfs its namesakes, or names its country, is not', () => {
  assert.equal(namesakes('Virginia').map(c => c.country), ['US'])
  assert.is(ambiguousLocationWarning('Virginia'), 'location "Virginia" is Virginia, ZA (122,502 people); the name is also Virginia, US (8,587): write "Virginia, US" (or LAT,LON) for another')
  assert.ok(namesakes('Valencia').some(c => c.country === 'ES'), 'Valencia, VE is chosen; Valencia, ES is named')
  for (const t of ['Paris', 'Berlin', 'London', 'Tokyo', 'Virginia, ZA', 'Virginia, US', '35.68,139.69']) assert.equal(namesakes(t), [], t)
  assert.is(ambiguousLocationWarning('Paris'), undefined)
})

test.run()
