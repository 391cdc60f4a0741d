// Unstructured layer: Cyclon partial views, announcement gossip, random walks.
export * from './cyclon.js'
export * from './gossip.js'
export * from './walk.js'
export * from './seen.js'
