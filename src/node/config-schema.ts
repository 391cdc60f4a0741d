// The node config's shape: every key with its check (config-provider.ts holds the provider's
// sections), the defaults, and the data dir everything else is found from.
import { homedir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { TRAINER_NAME } from '../training/spec.js'
import { NETWORK_NAMES } from '../chain/networks.js'
import { parseListen } from './metrics/listen.js'
import { containersSchema, providerSchema, trainerSchema } from './config-provider.js'

export const DEFAULT_DATA_DIR = join(homedir(), '.dbc')

const multiaddrString = z.string().refine(s => {
  try { multiaddr(s); return true } catch { return false }
}, { message: 'is not a valid multiaddr (example: /ip4/0.0.0.0/tcp/4001)' })

const bootstrapAddr = multiaddrString.refine(s => s.includes('/p2p/'), {
  message: 'must end in /p2p/PEER_ID so the node can check whom it reached'
})

const latLon = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/

export const configSchema = z.object({
  dataDir: z.string().min(1),
  listen: z.array(multiaddrString).min(1),
  announce: z.array(multiaddrString),
  bootstrap: z.array(bootstrapAddr),
  /** "LAT,LON" or a city name ("Tokyo", "Paris, FR"); empty = undeclared. */
  location: z.string().refine(s => {
    const m = s.match(latLon)
    if (m == null) return true // a city name: resolved at start
    const lat = Number(m[1]); const lon = Number(m[2])
    return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
  }, { message: 'latitude must be within -90..90 and longitude within -180..180' }),
  /** Declared GPUs for test networks, e.g. "2xRTX4090:24GiB". Marked as declared, never as probed. */
  gpus: z.string(),
  api: z.object({
    /** Control API port on 127.0.0.1; 0 picks a free one (written to <dataDir>/api.json). */
    port: z.number().int().min(0).max(65535)
  }).strict(),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /** <dataDir>/logs/node.N.log rolls over to a new file past this size (MiB; node.log links the newest). */
    maxSizeMiB: z.number().min(0.01).max(10240),
    /** Log files kept, the newest included; older ones are deleted. */
    files: z.number().int().min(1).max(1000)
  }).strict(),
  dht: z.object({
    /** Answer DHT queries (reachable nodes); false = client mode. */
    server: z.boolean(),
    /** Keep private/loopback addresses in DHT records (LANs, local test networks). */
    keepPrivateAddresses: z.boolean()
  }).strict(),
  /** Ping connections periodically and drop dead ones. */
  connectionMonitor: z.boolean(),
  overlay: z.object({
    /** How often to ping one peer of the view for Vivaldi coordinates (ms; 0 = never). */
    vivaldiIntervalMs: z.number().int().min(0).max(600_000)
  }).strict(),
  nat: z.object({
    /** Relay connections for peers behind NAT (circuit-relay-v2). */
    relayServer: z.boolean(),
    /** This node is behind a NAT: be reachable through a relay reservation (and hole punching). */
    behindNat: z.boolean(),
    /** Relays a node behind NAT holds a reservation on (2: survives one relay's loss; src/net/host.ts). */
    relayReservations: z.number().int().min(1).max(4).optional(),
    /** With behindNat on one host (demos, tests): accept only relayed connections and dial directly only the bootstrap peers (src/net/routes/private-peers.ts). */
    strict: z.boolean().optional(),
    /** UDP port of the STUN responder a public relay node runs (default 3478; 0: none), and the port a NATed node asks its bootstrap peers on (src/net/stun). */
    stunPort: z.number().int().min(0).max(65535).optional(),
    /** With behindNat: WebRTC to other NATed peers, hole-punched by ICE (default true). */
    webrtc: z.boolean().optional(),
    /** With behindNat: STUN servers (`stun:IP:PORT`) instead of the bootstrap peers' at stunPort. */
    iceServers: z.array(z.string().regex(/^stuns?:/).max(256)).max(8).optional()
  }).strict(),
  /**
   * How this node's jobs reach providers (src/net/routes) and its training peers: mode 'auto' (a
   * direct connection, else a relayed one, else sealed envelopes through the overlay), 'direct'
   * (connections only, never the overlay; a job's own `routing` may still allow it) or 'overlay'
   * (always the overlay, node-wide: no connection with providers; a job cannot weaken it);
   * k: paths per envelope (default 2). `dbc node start --routing MODE` sets the mode.
   */
  routing: z.object({
    mode: z.enum(['auto', 'direct', 'overlay']),
    k: z.number().int().min(1).max(4).optional()
  }).strict().optional(),
  /**
   * The network whose chain this node settles on (src/chain/networks.ts): sandbox (an EVM in
   * this node, single node only), local (anvil, `dbc chain serve`), dbc-testnet, dbc-mainnet.
   * Unset: the sandbox for a lone node; a node with bootstrap peers must name one.
   */
  network: z.enum(NETWORK_NAMES, { message: `is not a network (one of ${NETWORK_NAMES.join(', ')})` }).optional(),
  /** The chain (src/chain/settings.ts): rpc, chainId, contract, keyFile, confirmations... */
  chain: z.record(z.string(), z.unknown()),
  /** This node as a provider: its whole policy (prices, executors, slots, GPUs offered, per-task caps). */
  provider: providerSchema.optional(),
  /** Prometheus /metrics, /healthz and /readyz on their own address, without a token (src/node/metrics); off when unset. */
  metrics: z.object({
    /** "PORT" (on 127.0.0.1) or "HOST:PORT"; port 0 picks a free one (shown in `dbc node status`). */
    listen: z.string().refine(s => parseListen(s) !== undefined, { message: 'is not an address to listen on (PORT or HOST:PORT, e.g. 127.0.0.1:9464)' })
  }).strict().optional(),
  /** The inbound guard's gate for new identities per address (src/net/guard; defaults there, with the reasoning). */
  guard: z.object({
    /** New identities one address may introduce at once. */
    newIdentityBurst: z.number().int().min(0).max(1_000_000).optional(),
    /** One more new identity per address per this many ms. */
    newIdentityRefillMs: z.number().int().min(1).max(86_400_000).optional()
  }).strict().optional(),
  /** Container tasks (src/compute/executors/docker/settings.ts): the engine, the images tasks may name, limits. */
  containers: containersSchema.optional(),
  /** The trainers this node offers, by name: the only programs a training job may run here. */
  trainers: z.record(z.string().regex(TRAINER_NAME, { message: 'is not a trainer name (lower-case letters, digits, . _ -; at most 64)' }), trainerSchema)
}).strict()

export type NodeConfig = z.infer<typeof configSchema>

export function defaultConfig (dataDir = DEFAULT_DATA_DIR): NodeConfig {
  return {
    dataDir,
    listen: ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'],
    announce: [],
    bootstrap: [],
    location: '',
    gpus: '',
    api: { port: 0 },
    log: { level: 'info', maxSizeMiB: 10, files: 5 },
    dht: { server: true, keepPrivateAddresses: true },
    connectionMonitor: true,
    overlay: { vivaldiIntervalMs: 2000 },
    nat: { relayServer: true, behindNat: false },
    network: undefined,
    chain: {},
    provider: undefined,
    metrics: undefined,
    trainers: {}
  }
}

/** A partial config: what one source sets. Nested objects are merged key by key. */
export type ConfigLayer = Record<string, unknown>

/** Parses "LAT,LON"; undefined for anything else (a city name). */
export function parseLatLon (s: string): { lat: number, lon: number } | undefined {
  const m = s.match(latLon)
  return m == null ? undefined : { lat: Number(m[1]), lon: Number(m[2]) }
}
