// A stand-in for TaskEnvelopes in the route book's unit tests: records requests, answers an offer
// (or what `answer` returns; an Error is thrown) through the given relays, and opens leases there.
import { dbc } from '../../../src/wire/gen/wire.js'

export interface FakeOverlay { overlay: any, sent: Array<{ peer: string, msg: dbc.task.v1.ITaskMessage }> }

export function fakeOverlay (opts: { relays?: string[], answer?: (msg: dbc.task.v1.ITaskMessage) => dbc.task.v1.ITaskMessage | Error } = {}): FakeOverlay {
  const relays = opts.relays ?? ['R1']
  const answer = opts.answer ?? (() => ({ offer: { slots: 1 } }))
  const sent: FakeOverlay['sent'] = []
  return {
    sent,
    overlay: {
      request: async (peer: string, msg: dbc.task.v1.ITaskMessage) => {
        sent.push({ peer, msg })
        const a = answer(msg)
        if (a instanceof Error) throw a
        return { reply: dbc.task.v1.TaskMessage.create(a), relays }
      },
      openLease: async () => ({ relays, close: async () => {} })
    }
  }
}
