// Link cut during a multi-path message stream: A sends a stream of sealed envelopes to B with
// k=2 over relays only (no direct A-B connection); mid-stream the uplink of the relay that was
// carrying copies is taken down (its veth's bridge port, in the switch namespace). Delivery
// must continue over the remaining path(s).
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { NetnsCluster, repoRoot, sleep, type NetnsHost } from './harness.js'
import { waitUntil } from '../helpers/wait.js'

interface Proc { host: NetnsHost, child: ChildProcess, id: string, events: Array<Record<string, any>>, send: (o: unknown) => void }

async function startEnvelopeNode (c: NetnsCluster, h: NetnsHost): Promise<Proc> {
  const child = c.exec(h, [...NetnsCluster.nodeTs(join(repoRoot, 'test/netns/envelope-node.ts')), h.announce, String(h.location.lat), String(h.location.lon)], 'envelope')
  const events: Array<Record<string, any>> = []
  const id = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', line => {
      let e: Record<string, any>
      try { e = JSON.parse(line) } catch { return }
      events.push(e)
      if (e.event === 'ready') resolve(e.id)
    })
    child.once('exit', code => { reject(new Error(`envelope node on ${h.spec.name} exited (${String(code)}):\n${h.log}`)) })
  })
  return { host: h, child, id, events, send: o => child.stdin!.write(JSON.stringify(o) + '\n') }
}

const until = async (cond: () => boolean, ms: number, what: string): Promise<void> => { await waitUntil(what, cond, { ms, everyMs: 20 }) }

export interface LinkCutResult {
  sent: number
  delivered: number
  failed: string[]
  /** Distinct messages B received, and how many copies of any message B handed up twice. */
  received: number
  duplicates: number
  cutAfter: number
  cutRelay: string
  viaAfterCut: Record<string, number>
  latencyBeforeMs: number[]
  latencyAfterMs: number[]
}

/** Hosts: [A, B, relay...]; sends `messages` envelopes every `gapMs`, cuts a relay after `cutAfter`. */
export async function runLinkCut (c: NetnsCluster, opts: { messages: number, gapMs: number, cutAfter: number }): Promise<LinkCutResult> {
  const procs = await Promise.all(c.hosts.map(async h => await startEnvelopeNode(c, h)))
  const [a, b, ...relays] = procs
  for (const [from, to] of [...relays.map(r => [a, r]), ...relays.map(r => [r, b])] as Array<[Proc, Proc]>) {
    const addr = `${to.host.announce}/p2p/${to.id}`
    from.send({ cmd: 'dial', addr })
    await until(() => from.events.some(e => (e.event === 'dialed' || e.event === 'dial-failed') && e.addr === addr), 20_000, `${from.host.spec.name} -> ${to.host.spec.name}`)
    const failed = from.events.find(e => e.event === 'dial-failed' && e.addr === addr)
    if (failed !== undefined) throw new Error(`dial ${from.host.spec.name} -> ${to.host.spec.name}: ${String(failed.error)}`)
  }
  let cutRelay: Proc | undefined
  const sentAt = new Map<string, number>()
  for (let i = 0; i < opts.messages; i++) {
    const text = `m${i}`
    sentAt.set(text, Date.now())
    a.send({ cmd: 'send', to: b.id, text, k: 2, direct: false })
    if (i === opts.cutAfter - 1) {
      // cut the relay that carried the most copies so far
      await until(() => b.events.some(e => e.event === 'message'), 10_000, 'a first message at B')
      const counts = new Map<string, number>()
      for (const e of b.events) if (e.event === 'message') counts.set(e.via, (counts.get(e.via) ?? 0) + 1)
      const busiest = [...counts.entries()].sort((x, y) => y[1] - x[1])[0][0]
      cutRelay = relays.find(r => r.id === busiest) ?? relays[0]
      c.setLink(cutRelay.host, false)
    }
    await sleep(opts.gapMs)
  }
  await until(() => a.events.filter(e => e.event === 'delivered' || e.event === 'failed').length >= opts.messages, 60_000, 'every send to settle')
  await sleep(1000)
  const got = b.events.filter(e => e.event === 'message')
  const texts = got.map(e => e.text as string)
  const viaAfterCut: Record<string, number> = {}
  const lat = (before: boolean): number[] => a.events.filter(e => e.event === 'delivered' && (Number(String(e.text).slice(1)) < opts.cutAfter) === before).map(e => e.ms as number)
  for (const e of got) {
    if (Number(String(e.text).slice(1)) < opts.cutAfter) continue
    const name = procs.find(p => p.id === e.via)?.host.spec.name ?? e.via
    viaAfterCut[name] = (viaAfterCut[name] ?? 0) + 1
  }
  for (const p of procs) p.send({ cmd: 'stop' })
  return {
    sent: opts.messages,
    delivered: a.events.filter(e => e.event === 'delivered').length,
    failed: a.events.filter(e => e.event === 'failed').map(e => `${String(e.text)}: ${String(e.error)}`),
    received: new Set(texts).size,
    duplicates: texts.length - new Set(texts).size,
    cutAfter: opts.cutAfter,
    cutRelay: cutRelay?.host.spec.name ?? '?',
    viaAfterCut,
    latencyBeforeMs: lat(true),
    latencyAfterMs: lat(false)
  }
}
