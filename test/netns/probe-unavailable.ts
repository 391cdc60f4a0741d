// Run without root by netns-linkcut.test.ts: creating a cluster must throw, with the reason.
import { NetnsCluster } from './harness.js'
try {
  const c = await NetnsCluster.create([{ name: 'a', city: 'Paris' }])
  await c.destroy()
  process.stdout.write('created\n')
} catch (err) {
  process.stdout.write(`refused: ${(err as Error).message}\n`)
}
