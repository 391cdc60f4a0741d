// The OpenAPI 3.1 document of the control API, built from the route contracts (routes.ts).
// scripts/generate.ts writes it to docs/openapi.json; the node serves it at GET /v1/openapi.json.
import { z } from 'zod'
import { deepSchemaOf, type RouteContract } from './contract.js'
import { routes } from './routes.js'

type JsonSchema = Record<string, unknown>

const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'a stable code, e.g. BAD_REQUEST, NOT_FOUND, UNAUTHORIZED' },
        name: { type: 'string' },
        message: { type: 'string' },
        hint: { type: 'string', description: 'what to do about it' },
        field: { type: 'string', description: 'for BAD_REQUEST from the contract check: the field at fault, e.g. body.peer' }
      }
    }
  }
}

/**
 * JSON Schema (2020-12, the dialect of OpenAPI 3.1). Answers are described as 'input' too: zod's
 * 'output' view closes every object (additionalProperties: false), and a newer node may add fields.
 */
export function jsonSchemaOf (schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    override: (ctx) => {
      const deep = deepSchemaOf(ctx.zodSchema as unknown as z.ZodType)
      if (deep === undefined) return
      const inner = jsonSchemaOf(deep.schema, 'input')
      Object.assign(ctx.jsonSchema, inner, { description: `${String(inner.description ?? '')}${inner.description !== undefined ? ' ' : ''}(checked by the node: ${deep.note})` })
    }
  }) as JsonSchema
  delete out.$schema
  return out
}

function parameters (r: RouteContract): unknown[] {
  const out: unknown[] = []
  for (const [where, obj] of [['path', r.params], ['query', r.query]] as const) {
    if (obj === undefined) continue
    const js = jsonSchemaOf(obj, 'input') as { properties?: Record<string, JsonSchema>, required?: string[] }
    for (const [name, s] of Object.entries(js.properties ?? {})) {
      const { description, ...schema } = s
      out.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema, ...(description !== undefined ? { description } : {}) })
    }
  }
  return out
}

function responses (r: RouteContract): Record<string, unknown> {
  const ok = r.path === '/dashboard/login'
    ? { 302: { description: 'signed in: the session cookie is set and the browser goes to /dashboard/' }, 401: { description: 'the link is unknown, used or expired', content: { 'text/html': { schema: { type: 'string' } } } } }
    : {
        200: r.stream === true
          ? {
              description: 'a stream of events, each one as below: one JSON object a line, or `data: <json>` server-sent events with a `: ping` comment every 15 s; a failure after the stream began is a last event of type "error"',
              content: { 'application/x-ndjson': { schema: jsonSchemaOf(r.response, 'input') }, 'text/event-stream': { schema: { type: 'string' } } }
            }
          : { description: 'success', content: { 'application/json': { schema: jsonSchemaOf(r.response, 'input') } } }
      }
  const error = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
  return {
    ...ok,
    ...(r.public === true ? {} : { 401: { description: 'missing or wrong token (UNAUTHORIZED)', ...error } }),
    ...(r.path === '/dashboard/login' ? {} : { 400: { description: `a request that breaks this contract (BAD_REQUEST naming the field), or a refusal${r.errors !== undefined ? ': ' + r.errors.join(', ') : ''}`, ...error } }),
    ...(r.params !== undefined ? { 404: { description: 'no such job or peer (NOT_FOUND)', ...error } } : {}),
    500: { description: 'an unexpected failure (INTERNAL)', ...error }
  }
}

function operationId (r: RouteContract): string {
  const words = r.path.split('/').filter(s => s !== '' && s !== 'v1').map(s => s.startsWith(':') ? 'by-' + s.slice(1) : s)
  return [r.method.toLowerCase(), ...words].join('-').replace(/[^a-zA-Z0-9]+(.)/g, (_, c: string) => c.toUpperCase())
}

/**
 * A route's request body: required unless it is an object whose fields are all optional (the
 * server reads a missing body as {} for an object body: `POST /v1/stop` with none drains by default).
 */
function requestBody (body: z.ZodType): Record<string, unknown> {
  const schema = jsonSchemaOf(body, 'input') as { required?: string[] }
  const required = !(body instanceof z.ZodObject) || (schema.required ?? []).length > 0
  return { required, content: { 'application/json': { schema } } }
}

export function buildOpenApi (version = '0.1.0'): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of Object.values(routes) as RouteContract[]) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    const op: Record<string, unknown> = {
      operationId: operationId(r),
      summary: r.summary,
      ...(r.description !== undefined ? { description: r.description } : {}),
      tags: [r.tag],
      ...(r.public === true ? { security: [] } : r.method === 'GET' ? { security: [{ bearer: [] }, { dashboardSession: [] }] } : {}),
      parameters: parameters(r),
      ...(r.body !== undefined ? { requestBody: requestBody(r.body) } : {}),
      responses: responses(r)
    }
    if ((op.parameters as unknown[]).length === 0) delete op.parameters
    paths[path] ??= {}
    paths[path][r.method.toLowerCase()] = op
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'dbc node control API',
      version,
      description: 'The control API of a dbc-overlay node: JSON over HTTP on 127.0.0.1 only. Every /v1 route needs `Authorization: Bearer <token>` (the token is in <dataDir>/api-token, the port in <dataDir>/api.json); a dashboard session cookie also authorises GET routes. Generated from src/api/routes.ts by `npm run generate`.'
    },
    servers: [{ url: 'http://127.0.0.1:{port}', description: 'the node on this machine (its port is in <dataDir>/api.json)', variables: { port: { default: '7700' } } }],
    security: [{ bearer: [] }],
    tags: [...new Set((Object.values(routes) as RouteContract[]).map(r => r.tag))].map(name => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the token in <dataDir>/api-token' },
        dashboardSession: { type: 'apiKey', in: 'cookie', name: 'dbc_session', description: 'set by GET /dashboard/login; GET routes only' }
      },
      schemas: { Error: ERROR_SCHEMA }
    }
  }
}
