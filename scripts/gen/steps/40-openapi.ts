// src/api/routes.ts (the control API's route contracts) → docs/openapi.json (OpenAPI 3.1).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot, type GenerateStep } from '../index.js'
import { buildOpenApi } from '../../../src/api/openapi.js'

const OUT = 'docs/openapi.json'

export const step: GenerateStep = {
  name: 'openapi',
  outputs: [OUT],
  async generate (outRoot) {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }
    mkdirSync(join(outRoot, 'docs'), { recursive: true })
    writeFileSync(join(outRoot, OUT), JSON.stringify(buildOpenApi(version), null, 2) + '\n')
  }
}
