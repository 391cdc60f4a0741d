// Sealed envelopes and the crypto suites behind them.
export * from './envelope.js'
export { nodeSuite, nobleSuite, ed25519Seed, ed25519ToX25519Public, ed25519ToX25519Secret, type CryptoSuite } from './suite.js'
export * from './ack.js'
export { RandomPool } from './random.js'
