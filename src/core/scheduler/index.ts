// The grid-job scheduler, sans-IO: manifest validation, job → tasks, placement by a cost
// model with explanations, the task/lease state machine with verification by quorum,
// reputation, and ownership checks. The runtime that drives it lives in src/jobs/.
export * from './manifest.js'
export * from './expand.js'
export * from './placement.js'
export * from './explain.js'
export * from './reputation.js'
export * from './job-machine.js'
export * from './ownership.js'
export * from './spot-check.js'
export * from './lease-search.js'
export * from './budget-ledger.js'
export * from './code-cache.js'
export * from './job-policy.js'
export * from './job-session.js'
export * from './speculation.js'
export * from './lease-cap.js'
