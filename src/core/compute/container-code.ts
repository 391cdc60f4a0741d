// The `code` of a container task: which of the provider's images to run and whether the task asks
// for a network. It travels as the task's code (covered by code_hash, which the owner signs), as
// small JSON: {"image":"NAME","network":false}. Plain text is read as an image name (older tasks).
// Pure: no I/O. The provider decides whether it allows either (src/compute/executors/docker/).

export interface ContainerCode {
  /** A name from the provider's image list (or the reference it maps to). */
  image: string
  /** The task asks for a network; the provider may refuse it. */
  network: boolean
}

/** Longest container code accepted: a name and a flag. */
export const MAX_CONTAINER_CODE_BYTES = 1024
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,255}$/

export class ContainerCodeError extends Error {
  override name = 'ContainerCodeError'
}

export function encodeContainerCode (c: ContainerCode): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ image: c.image, network: c.network }))
}

/** Parses a container task's code; throws ContainerCodeError naming what is wrong. */
export function parseContainerCode (code: Uint8Array): ContainerCode {
  if (code.length === 0) throw new ContainerCodeError('the task names no image')
  if (code.length > MAX_CONTAINER_CODE_BYTES) throw new ContainerCodeError(`the container code has ${code.length} bytes, at most ${MAX_CONTAINER_CODE_BYTES} are read`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(code).trim()
  } catch {
    throw new ContainerCodeError('the container code is not UTF-8 text')
  }
  let image: unknown = text
  let network: unknown = false
  if (text.startsWith('{')) {
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { throw new ContainerCodeError('the container code is not valid JSON') }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ContainerCodeError('the container code must be a JSON object')
    const extra = Object.keys(parsed).filter(k => k !== 'image' && k !== 'network')
    if (extra.length > 0) throw new ContainerCodeError(`the container code has unknown field "${extra[0]}" (known: image, network)`)
    image = (parsed as Record<string, unknown>).image
    network = (parsed as Record<string, unknown>).network ?? false
  }
  if (typeof image !== 'string' || !IMAGE_NAME.test(image)) throw new ContainerCodeError(`${JSON.stringify(image)?.slice(0, 80) ?? 'nothing'} is not an image name`)
  if (typeof network !== 'boolean') throw new ContainerCodeError('"network" must be true or false')
  return { image, network }
}
