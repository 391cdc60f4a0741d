// `npm run generate [-- STEP...]`: rebuilds every generated artefact that is committed
// (protobuf code, contract ABI/bytecode, wasm task modules).
import { loadSteps, repoRoot } from './gen/index.js'

const only = process.argv.slice(2)
for (const step of await loadSteps()) {
  if (only.length > 0 && !only.includes(step.name)) continue
  const t0 = Date.now()
  await step.generate(repoRoot)
  console.log(`generated ${step.name.padEnd(10)} ${step.outputs.length} file(s) in ${Date.now() - t0} ms`)
}
