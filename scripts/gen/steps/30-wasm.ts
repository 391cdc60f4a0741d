// wasm/*.ts (AssemblyScript task modules) → src/compute/modules/NAME.wasm.
// asc is deterministic for the same sources, flags and compiler version, so the freshness test
// can compare bytes. wasm/abi.ts is a shared library, not a module of its own.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot, type GenerateStep } from '../index.js'

const SRC = 'wasm'
const OUT = 'src/compute/modules'
const LIBRARIES = new Set(['abi.ts'])

function moduleSources (): string[] {
  return readdirSync(join(repoRoot, SRC)).filter(f => f.endsWith('.ts') && !LIBRARIES.has(f)).sort()
}

export const step: GenerateStep = {
  name: 'wasm',
  outputs: moduleSources().map(f => `${OUT}/${f.replace(/\.ts$/, '.wasm')}`),
  async generate (outRoot) {
    const asc = (await import('assemblyscript/asc')).default
    mkdirSync(join(outRoot, OUT), { recursive: true })
    for (const file of moduleSources()) {
      const name = file.replace(/\.ts$/, '')
      let binary: Uint8Array | undefined
      let errors = ''
      const { error } = await asc.main([
        `${SRC}/${file}`, '--outFile', `${name}.wasm`,
        '-O3', '--runtime', 'stub', '--noAssert', '--initialMemory', '1'
      ], {
        readFile: async (filename: string, baseDir: string) => {
          const { readFile } = await import('node:fs/promises')
          try { return await readFile(join(repoRoot, baseDir, filename), 'utf8') } catch { return null }
        },
        writeFile: async (filename: string, contents: Uint8Array | string) => {
          if (filename.endsWith('.wasm')) binary = contents as Uint8Array
        },
        listFiles: async () => [],
        stdout: { write: () => true } as unknown as NodeJS.WritableStream,
        stderr: { write: (s: string) => { errors += s; return true } } as unknown as NodeJS.WritableStream
      } as never)
      if (error != null || binary === undefined) throw new Error(`asc failed on ${SRC}/${file}: ${error?.message ?? 'no output'}\n${errors}`)
      writeFileSync(join(outRoot, OUT, `${name}.wasm`), binary)
    }
  }
}
