// The shape of one control-API route, written once and used three ways: the server checks a
// request against it (a bad one gets 400 naming the field), the client's `request` is typed from
// it (z.input in, z.output out) and scripts/generate.ts describes it in docs/openapi.json.
import { z } from 'zod'
import { DbcError } from '../errors.js'

export type Method = 'GET' | 'POST' | 'DELETE'

export interface RouteContract {
  method: Method
  /** fastify-style path: ':name' segments are parameters */
  path: string
  summary: string
  /** longer text for the description (what it does, who may call it) */
  description?: string
  tag: string
  params?: z.ZodObject
  query?: z.ZodObject
  body?: z.ZodType
  /** the JSON answer; for a stream route, one event of the stream */
  response: z.ZodType
  /** NDJSON, or server-sent events when asked with Accept: text/event-stream */
  stream?: boolean
  /** answered without the token (health probes, the dashboard login) */
  public?: boolean
  /** error codes the route answers with besides the common ones, for the description */
  errors?: string[]
}

/** Keeps the literal types of a contract table while checking each entry. */
export function defineRoutes<const T extends Record<string, RouteContract>> (routes: T): T {
  for (const [key, r] of Object.entries(routes)) {
    if (key !== `${r.method} ${r.path}`) throw new Error(`contract key "${key}" does not match ${r.method} ${r.path}`)
  }
  return routes
}

const deepSchemas = new WeakMap<z.ZodType, { schema: z.ZodType, note: string }>()

/**
 * A field the route's handler validates itself with a domain schema (so its errors keep their
 * own codes, e.g. MANIFEST_INVALID): the gate lets anything through, the document shows `schema`.
 */
export function checkedByHandler<T extends z.ZodType> (schema: T, note: string): z.ZodType<z.output<T>, z.input<T>> {
  const placeholder = z.unknown()
  deepSchemas.set(placeholder, { schema, note })
  return placeholder as unknown as z.ZodType<z.output<T>, z.input<T>>
}

export function deepSchemaOf (s: z.ZodType): { schema: z.ZodType, note: string } | undefined {
  return deepSchemas.get(s)
}

/** A route parameter: a job or peer id, bounded so a hostile path costs nothing. */
export const idParam = z.string().min(1).max(200)

/** Query values arrive as text: a whole number in [min, max]. */
export function queryInt (min: number, max: number, description: string): z.ZodOptional<z.ZodCoercedNumber> {
  return z.coerce.number().int().min(min).max(max).optional().meta({ description }) as any
}

export type ParamsOf<C extends RouteContract> = C['params'] extends z.ZodObject ? z.input<C['params']> : undefined
export type QueryOf<C extends RouteContract> = C['query'] extends z.ZodObject ? z.input<C['query']> : undefined
export type BodyOf<C extends RouteContract> = C['body'] extends z.ZodType ? z.input<C['body']> : undefined
export type ResponseOf<C extends RouteContract> = z.output<C['response']>

/** What the client passes for a route: only the parts the route has. */
export type InputOf<C extends RouteContract> =
  (C['params'] extends z.ZodObject ? { params: ParamsOf<C> } : { params?: undefined }) &
  (C['query'] extends z.ZodObject ? { query?: QueryOf<C> } : { query?: undefined }) &
  (C['body'] extends z.ZodType ? { body?: BodyOf<C> } : { body?: undefined })

/** The error a request that breaks its contract gets: 400, its code, and the field it names. */
export class RequestInvalidError extends DbcError {
  override name = 'RequestInvalidError'
}

/** Checks one part of a request; throws RequestInvalidError naming the first bad field. */
export function checkPart (part: 'params' | 'query' | 'body', schema: z.ZodType | undefined, value: unknown): void {
  if (schema === undefined) return
  const r = schema.safeParse(value)
  if (r.success) return
  const issue = r.error.issues[0]
  const field = [part, ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]] : issue.path.map(String))].join('.')
  throw new RequestInvalidError('BAD_REQUEST', `${field}: ${issue.message}`, {
    hint: 'see the route in docs/openapi.json (or GET /v1/openapi.json)',
    data: { field, issues: r.error.issues.slice(0, 10).map(i => ({ path: i.path.map(String).join('.'), message: i.message })) }
  })
}
