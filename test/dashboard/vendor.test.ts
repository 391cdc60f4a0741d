// The dashboard's vendored browser files resolve to files in node_modules (no CDN), and its own
// files are where the server serves them from.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { vendorFiles, WEB_DIR } from '../../src/dashboard/index.js'
// @ts-expect-error: the page's own plain-JS module (no types)
import { dbc, shortId } from '../../src/dashboard/web/lib.js'

test('every vendored library resolves to a file', () => {
  const files = vendorFiles()
  assert.equal(Object.keys(files).sort(), ['chart.umd.min.js', 'countries-110m.json', 'd3-array.min.js', 'd3-geo.min.js', 'topojson-client.min.js'].map(f => `/dashboard/vendor/${f}`))
  for (const f of Object.values(files)) assert.ok(existsSync(f), f)
  const atlas = JSON.parse(readFileSync(files['/dashboard/vendor/countries-110m.json'], 'utf8'))
  assert.is(atlas.type, 'Topology')
  assert.ok(atlas.objects.countries.geometries.length > 100)
})

test('the page loads only files of its own origin, with no inline script or style', () => {
  const html = readFileSync(join(WEB_DIR, 'index.html'), 'utf8')
  const srcs = [...html.matchAll(/<script\b[^>]*>/g)].map(m => m[0])
  assert.ok(srcs.length > 0)
  for (const s of srcs) assert.match(s, /src="(vendor\/[\w.-]+|app\.js)"/, s)
  assert.not.match(html, /<script>[^<]/)
  assert.not.match(html, /<style|style=|https?:\/\//)
  for (const s of srcs) {
    const src = /src="([^"]+)"/.exec(s)![1]
    if (src.startsWith('vendor/')) assert.ok(vendorFiles()[`/dashboard/${src}`] !== undefined, src)
    else assert.ok(existsSync(join(WEB_DIR, src)), src)
  }
})

test('amounts show in DBC with a unit: 6 decimals from 1 DBC up, every significant decimal below', () => {
  assert.is(dbc('0'), '0 DBC')
  assert.is(dbc('513888888885'), '0.000000513888888885 DBC')
  assert.is(dbc(10n ** 18n), '1 DBC')
  assert.is(dbc('9899999999919000000000000'), '9,899,999.999919 DBC')
  assert.is(dbc('-2500000000000000000'), '-2.5 DBC')
  assert.is(dbc(undefined), '-')
  assert.is(shortId('12D3KooWDnJfuWVvpw8hFXcaRGYhfrr7iQeRfCncoARiVHRsRZY1'), '12D3KooW…RsRZY1')
})

test.run()
