// Starting and stopping a node:http server, shared by the control API and the metrics listener.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Listens on host:port (0 = any free port); resolves with the bound address, rejects on a listen error. */
export async function listenOn (server: Server, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return server.address() as AddressInfo
}

/** Closes the server and every open connection. */
export async function closeServer (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>(resolve => server.close(() => { resolve() }))
}
