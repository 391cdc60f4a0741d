// The job runtime: manifest files, the durable job store, the runner that drives the
// scheduler's JobMachine over a JobTransport, and in-process providers for tests.
export * from './manifest-file.js'
export * from './store.js'
export * from './transport.js'
export * from './runner.js'
export * from './local-transport.js'
export * from './fake-provider.js'
export * from './service.js'
export * from './errors.js'
export * from './signing.js'
export * from './compute-provider.js'
export * from './process-transport.js'
export type { ProviderProcessSpec } from './provider-process.js'
