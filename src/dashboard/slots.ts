// Compute slot use as the Node and Jobs pages show it, counted from the compute peer's slot
// events (the slot manager itself is private to the peer).
import type { EventEmitter } from 'node:events'

interface SlotEventLike { type?: string, taskId?: string }

const MAX_TRACKED = 4096

export class SlotTracker {
  private readonly running = new Set<string>()
  private readonly queued = new Set<string>()
  private finished = 0
  private failed = 0
  private refused = 0
  private readonly listeners = new Set<() => void>()

  attach (events: EventEmitter<any>): void {
    events.on('event', (e: SlotEventLike) => { this.on(e) })
  }

  on (e: SlotEventLike): void {
    const id = e.taskId ?? ''
    switch (e.type) {
      case 'queued': if (this.queued.size < MAX_TRACKED) this.queued.add(id); break
      case 'started': this.queued.delete(id); if (this.running.size < MAX_TRACKED) this.running.add(id); break
      case 'finished': this.running.delete(id); this.finished++; if ((e as { ok?: boolean }).ok === false) this.failed++; break
      case 'refused': this.queued.delete(id); this.refused++; break
      case 'cancelled': this.queued.delete(id); this.running.delete(id); break
      default: return
    }
    for (const l of this.listeners) l()
  }

  onChange (fn: () => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  view (): { running: number, queued: number, finished: number, failed: number, refused: number } {
    return { running: this.running.size, queued: this.queued.size, finished: this.finished, failed: this.failed, refused: this.refused }
  }
}
