// Capability records, their DHT index keys, matching, and the ring-by-ring search.
export * from './record.js'
export * from './query.js'
export * from './search.js'
export * from './store.js'
