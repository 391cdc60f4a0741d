// The manifest of a wasm job whose tasks are the fixed-size records of one input file, as the tests
// that submit jobs to real daemons write it: a module of src/compute/modules, entry `run`, one task
// per record. Each test adds what it is about (checks, routing, budget, task limits).
import { join } from 'node:path'
import { repoRoot } from '../../demo/network.js'

/** The bytes of one task's input: square.wasm reads one f64, mandelbrot.wasm one tile (encodeTileInput). */
export const RECORD_BYTES = { square: 8, mandelbrot: 36 } as const

export type RecordModule = keyof typeof RECORD_BYTES

/** `{ name, executor: 'wasm', code: <module>.wasm, entry: 'run', inputs: { files: { path, chunkBytes: <record size> } }, ...fields }` */
export function recordsJobManifest (name: string, module: RecordModule, path: string, fields: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    executor: 'wasm',
    code: { wasm: join(repoRoot, 'src/compute/modules', `${module}.wasm`) },
    entry: 'run',
    inputs: { files: { path, chunkBytes: RECORD_BYTES[module] } },
    ...fields
  }
}
