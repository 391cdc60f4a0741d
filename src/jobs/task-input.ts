// The input bytes of one task: a list/range value encoded, a whole file, or a byte range of one.
import { open, readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { taskInputSpec, encodeValueInput, type Manifest } from '../core/scheduler/index.js'

export async function readTaskInput (m: Manifest, index: number, fileSize: number | undefined, baseDir = '.'): Promise<Uint8Array> {
  const spec = taskInputSpec(m, index, fileSize)
  if (spec.kind === 'value') return encodeValueInput(spec.value, m.task.inputEncoding)
  const path = resolve(baseDir, spec.path)
  if (spec.kind === 'file') return new Uint8Array(await readFile(path))
  const fh = await open(path)
  try {
    const buf = new Uint8Array(spec.length)
    await fh.read(buf, 0, spec.length, spec.offset)
    return buf
  } finally { await fh.close() }
}
