// How the job runner reaches providers. In-process (LocalTransport, tests and benches), over IPC
// (ProcessTransport) and over libp2p (src/net/tasks.ts) implement the same interface; the port
// types live in the core (src/core/scheduler/ports.ts) so net/ does not import jobs/.
export { offerView, resultCode, withOwnCode, PERF_SCORE_REFERENCE, type JobLocation, type JobTransport, type TransportOffer, type LocalProvider } from '../core/scheduler/ports.js'
