// Code generation steps. Each step reads sources from the repository and writes its outputs
// under `outRoot` (the repo itself for `npm run generate`, a temp dir for the freshness test).
// A step lists its outputs so the freshness test can compare them with the committed files.
import { readdirSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { join } from 'node:path'

export interface GenerateStep {
  name: string
  /** Output paths relative to the repository root. */
  outputs: string[]
  generate: (outRoot: string) => Promise<void>
}

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Every step in scripts/gen/steps/, in file-name order. */
export async function loadSteps (): Promise<GenerateStep[]> {
  const dir = join(repoRoot, 'scripts/gen/steps')
  const steps: GenerateStep[] = []
  for (const f of readdirSync(dir).filter(f => f.endsWith('.ts')).sort()) {
    const mod = await import(pathToFileURL(join(dir, f)).href) as { step: GenerateStep }
    steps.push(mod.step)
  }
  return steps
}
