// provider.priceCpuHour / priceGpuHour: what a node asks, from its config (flags --price-cpu-hour, --price-gpu-hour).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { configSchema, defaultConfig } from '../../../src/node/config.js'

test('provider prices: numbers (GPU also per model) are accepted; a negative price is refused', () => {
  const ok = configSchema.parse({ ...defaultConfig('/tmp/x'), provider: { priceCpuHour: 24, priceGpuHour: { A100: 1800, '*': 600 } } })
  assert.equal(ok.provider, { priceCpuHour: 24, priceGpuHour: { A100: 1800, '*': 600 } })
  assert.is(configSchema.safeParse({ ...defaultConfig('/tmp/x'), provider: { priceCpuHour: -1 } }).success, false)
  assert.is(configSchema.safeParse({ ...defaultConfig('/tmp/x'), provider: { priceGpuHour: Number.NaN } }).success, false)
})

test.run()
