// The embedded chain's world-state trie nodes, kept in memory and written to sqlite with the
// block that produced them. Trie nodes are content-addressed and never deleted (no pruning),
// so writing the nodes that are new since the last block, in the block's own transaction,
// is enough to reload the exact state after a crash.
import type { DatabaseSync } from 'node:sqlite'

type Key = string | number | Uint8Array
type Value = Uint8Array | string

/** Implements the `DB` interface of @ethereumjs/util that the merkle trie writes through. */
export class PersistedTrieDB {
  private readonly nodes: Map<string, Value>
  private dirty: Map<string, Value | undefined>

  constructor (nodes = new Map<string, Value>(), dirty = new Map<string, Value | undefined>()) {
    this.nodes = nodes
    this.dirty = dirty
  }

  static load (db: DatabaseSync): PersistedTrieDB {
    const nodes = new Map<string, Value>()
    for (const row of db.prepare('SELECT key, value FROM trie').iterate() as Iterable<{ key: string, value: Uint8Array }>) {
      nodes.set(row.key, new Uint8Array(row.value))
    }
    return new PersistedTrieDB(nodes)
  }

  async get (key: Key): Promise<Value | undefined> {
    return this.nodes.get(keyString(key))
  }

  async put (key: Key, value: Value): Promise<void> {
    const k = keyString(key)
    this.nodes.set(k, value)
    this.dirty.set(k, value)
  }

  async del (key: Key): Promise<void> {
    const k = keyString(key)
    this.nodes.delete(k)
    this.dirty.set(k, undefined)
  }

  async batch (ops: Array<{ type: 'put' | 'del', key: Key, value?: Value }>): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put' && op.value !== undefined) await this.put(op.key, op.value)
      else if (op.type === 'del') await this.del(op.key)
    }
  }

  /** Shares the node map (and the dirty set): the storage tries live in the same database. */
  shallowCopy (): PersistedTrieDB {
    return new PersistedTrieDB(this.nodes, this.dirty)
  }

  async open (): Promise<void> {}

  /** Writes the nodes changed since the last flush; call inside the block's sqlite transaction. */
  flushTo (db: DatabaseSync): number {
    const put = db.prepare('INSERT OR REPLACE INTO trie (key, value) VALUES (?, ?)')
    const del = db.prepare('DELETE FROM trie WHERE key = ?')
    let n = 0
    for (const [k, v] of this.dirty) {
      if (v === undefined) del.run(k)
      else put.run(k, typeof v === 'string' ? new TextEncoder().encode(v) : v)
      n++
    }
    this.dirty.clear()
    return n
  }

  get size (): number { return this.nodes.size }
}

function keyString (key: Key): string {
  if (key instanceof Uint8Array) return Buffer.from(key).toString('hex')
  return key.toString()
}
