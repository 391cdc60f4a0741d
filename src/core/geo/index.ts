// Geo-awareness: declared locations, geo cells, latency predicted from distance, Vivaldi.
export * from './location.js'
export * from './cells.js'
export * from './latency.js'
export * from './vivaldi.js'
