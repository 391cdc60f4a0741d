// Per-host delay relay, run inside one host's network namespace (plain JS: it starts in ~50 ms,
// no tsx). The kernel here has no netem, so link latency is emulated in user space:
//   * the node listens on 127.0.0.1:NODE_PORT inside its namespace, unreachable from others;
//   * this relay listens on the host's bridge address HOST_ADDR:PUBLIC_PORT (the node's
//     announced address) and forwards every inbound connection to the node, holding each chunk
//     for the one-way delay of that link: client->node by delay(src->us), node->client by
//     delay(us->src). The link is identified by the connection's source IP, which is the
//     dialling host's own bridge address (each namespace has exactly one uplink).
// Every connection between two hosts crosses exactly one relay (the listener's), so both
// directions of every pair see the geo one-way delay once: RTT = 2 x one-way + processing.
// It also forwards a unix socket to the daemon's loopback control API so the harness (in the
// root namespace) can reach it without putting anything on the host's network.
//
// argv[2]: JSON config { listen: {host, port}, target: {host, port}, delays: {srcIp: {in, out}},
//                        apiSocket?: string, apiInfoFile?: string }
import net from 'node:net'
import { readFileSync, rmSync } from 'node:fs'

const cfg = JSON.parse(process.argv[2])
const stats = { connections: 0, unknownSource: 0, bytes: 0 }

/** Writes chunks to `to` each `delayMs` after it arrived, in arrival order. */
function delayedPipe (from, to, delayMs) {
  const queue = []
  let timer
  const flush = () => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0].due <= now + 0.5) {
      const item = queue.shift()
      if (item.end) { to.end(); return }
      stats.bytes += item.chunk.length
      if (!to.destroyed) to.write(item.chunk)
    }
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0].due - performance.now()))
  }
  const push = (item) => {
    queue.push(item)
    if (delayMs <= 0) return flush()
    if (timer === undefined) timer = setTimeout(flush, Math.max(0, queue[0].due - performance.now()))
  }
  from.on('data', chunk => push({ due: performance.now() + delayMs, chunk }))
  from.on('end', () => push({ due: performance.now() + delayMs, end: true }))
  return () => { if (timer !== undefined) clearTimeout(timer); queue.length = 0 }
}

const server = net.createServer(client => {
  stats.connections++
  const src = (client.remoteAddress ?? '').replace(/^::ffff:/, '')
  const d = cfg.delays[src]
  if (d === undefined) stats.unknownSource++
  const upstream = net.connect(cfg.target.port, cfg.target.host)
  client.setNoDelay(true); upstream.setNoDelay(true)
  const stopA = delayedPipe(client, upstream, d?.in ?? 0)
  const stopB = delayedPipe(upstream, client, d?.out ?? 0)
  const close = () => { stopA(); stopB(); client.destroy(); upstream.destroy() }
  client.on('error', close); upstream.on('error', close)
  client.on('close', close); upstream.on('close', close)
})
server.listen(cfg.listen.port, cfg.listen.host, () => { process.stdout.write(`relay ready ${cfg.listen.host}:${cfg.listen.port}\n`) })

if (cfg.apiSocket !== undefined) {
  rmSync(cfg.apiSocket, { force: true })
  const api = net.createServer(c => {
    let port
    try { port = JSON.parse(readFileSync(cfg.apiInfoFile, 'utf8')).port } catch { c.destroy(); return }
    const u = net.connect(port, '127.0.0.1')
    c.pipe(u); u.pipe(c)
    c.on('error', () => u.destroy()); u.on('error', () => c.destroy())
  })
  api.listen(cfg.apiSocket)
}
process.on('SIGUSR2', () => { process.stdout.write(`relay stats ${JSON.stringify(stats)}\n`) })
process.on('SIGTERM', () => process.exit(0))
