// Multi-path routing: path choice, the sender's delivery machine, receive windows, peer scores.
export * from './paths.js'
export * from './delivery.js'
export * from './dedup.js'
export * from './score.js'
export * from './identity-gate.js'
