// Distributed training, pure parts: compression codecs, the butterfly all-reduce machine,
// adaptive round deadlines and the round coordinator. The runtime lives in src/training.
export * from './codecs.js'
export * from './allreduce.js'
export * from './deadline.js'
export * from './coordinator.js'
export * from './group.js'
export * from './state.js'
