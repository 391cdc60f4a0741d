// The provider's image list: a task names an image; only a listed one runs, and only when the
// image on this machine has the digest the operator pinned (its id or one of its repo digests).
import type Docker from 'dockerode'
import { ExecutorError } from '../../../errors.js'
import { ExecutorErrorCode } from '../types.js'
import type { AllowedImage } from './settings.js'

export type ImageCheck = { ok: true, imageId: string } | { ok: false, code: string, reason: string, hint: string }

/** The allowed entry a task's image name selects: by its name in the list, or by its reference. */
export function findAllowedImage (images: Record<string, AllowedImage>, name: string): { name: string, allowed: AllowedImage } | undefined {
  const byName = Object.hasOwn(images, name) ? images[name] : undefined
  if (byName !== undefined) return { name, allowed: byName }
  for (const [n, a] of Object.entries(images)) if (a.image === name) return { name: n, allowed: a }
  return undefined
}

/** The digests an engine reports for an image: its id and the digests of its repo digests. */
export function digestsOf (info: { Id?: string, RepoDigests?: string[] | null }): string[] {
  const out: string[] = []
  if (typeof info.Id === 'string') out.push(info.Id.startsWith('sha256:') ? info.Id : `sha256:${info.Id}`)
  for (const rd of info.RepoDigests ?? []) {
    const at = rd.lastIndexOf('@')
    if (at >= 0) out.push(rd.slice(at + 1))
  }
  return out
}

/** Checks one allowed image against the engine: present, and with the pinned digest. */
export async function checkImage (engine: Docker, name: string, allowed: AllowedImage): Promise<ImageCheck> {
  let info: Docker.ImageInspectInfo
  try {
    info = await engine.getImage(allowed.image).inspect()
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode
    if (status === 404) return { ok: false, code: ExecutorErrorCode.UNAVAILABLE, reason: `image "${name}" (${allowed.image}) is not on this machine`, hint: 'the provider\'s operator must pull or load it (the provider never pulls on a task\'s behalf)' }
    return { ok: false, code: ExecutorErrorCode.UNAVAILABLE, reason: `the engine could not inspect image "${name}" (${allowed.image}): ${(err as Error).message}`, hint: 'check the container engine' }
  }
  const digests = digestsOf(info)
  if (!digests.includes(allowed.digest)) {
    return { ok: false, code: ExecutorErrorCode.IMAGE_NOT_ALLOWED, reason: `image "${name}" (${allowed.image}) on this machine has digest ${digests[0] ?? '(none)'}, not the ${allowed.digest} the provider's config pins`, hint: 'the operator must load the pinned image or update the digest in containers.images' }
  }
  return { ok: true, imageId: digests[0] }
}

/** The refusal for an image name not on the list. */
export function notAllowedError (name: string, images: Record<string, AllowedImage>): ExecutorError {
  const names = Object.keys(images)
  return new ExecutorError(ExecutorErrorCode.IMAGE_NOT_ALLOWED, `image "${name}" is not on this provider's image list (${names.length === 0 ? 'it lists none' : `it runs: ${names.join(', ')}`})`, {
    hint: 'a provider runs only the images its operator listed (containers.images); name one of those, or send the job to providers that list yours'
  })
}
