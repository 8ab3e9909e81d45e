/**
 * IPAM state in STATE_DIR/ipam.db (better-sqlite3 v12).
 *
 * Crash safety: journal_mode=WAL with synchronous=FULL. Every write is its own transaction and
 * the WAL is fsynced at each commit, so a statement that returned survives a kill -9 and a power
 * loss. (WAL with NORMAL survives a process kill but may lose the last commits on power loss;
 * an allocation lost that way could be handed out twice while its container is restored, so we
 * pay the fsync: see bench/ipam.ts for its cost.) A torn write is rolled back by SQLite on open.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import type { IpamState, IpamStore, StoredAllocation } from './store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ring (id INTEGER PRIMARY KEY CHECK (id = 1), bytes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS allocations (
  container_id TEXT NOT NULL,
  subnet TEXT NOT NULL,
  address INTEGER NOT NULL,
  released INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (container_id, subnet)
);
`;

export class SqliteStore implements IpamStore {
  private readonly db: Database.Database;
  private readonly stmts;

  /**
   * Opens (creating if needed) `<stateDir>/ipam.db`. `synchronous` is FULL unless a caller
   * (the bench) asks for NORMAL to measure the difference.
   */
  constructor(stateDir: string, options: { synchronous?: 'FULL' | 'NORMAL' } = {}) {
    try {
      mkdirSync(stateDir, { recursive: true });
      this.db = new Database(join(stateDir, 'ipam.db'));
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new LoomError('ERR_INVALID_CONFIG', `cannot open IPAM state in ${stateDir}`, { cause: err });
    }
    this.stmts = {
      getRing: this.db.prepare<[], { bytes: Buffer }>('SELECT bytes FROM ring WHERE id = 1'),
      putRing: this.db.prepare<[Buffer]>('INSERT INTO ring (id, bytes) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET bytes = excluded.bytes'),
      all: this.db.prepare<[], { container_id: string; subnet: string; address: number; released: number }>(
        'SELECT container_id, subnet, address, released FROM allocations ORDER BY container_id, subnet',
      ),
      put: this.db.prepare<[string, string, number, number]>(
        'INSERT INTO allocations (container_id, subnet, address, released) VALUES (?, ?, ?, ?) ON CONFLICT(container_id, subnet) DO UPDATE SET address = excluded.address, released = excluded.released',
      ),
      del: this.db.prepare<[string, string]>('DELETE FROM allocations WHERE container_id = ? AND subnet = ?'),
      clear: this.db.prepare('DELETE FROM allocations'),
    };
  }

  load(): IpamState {
    const row = this.stmts.getRing.get();
    return {
      ring: row ? new Uint8Array(row.bytes) : null,
      allocations: this.stmts.all.all().map((r) => ({ containerId: r.container_id, subnet: r.subnet, address: r.address, released: r.released !== 0 })),
    };
  }

  saveRing(bytes: Uint8Array): void {
    this.stmts.putRing.run(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  putAllocation(a: StoredAllocation): void {
    this.stmts.put.run(a.containerId, a.subnet, a.address, a.released ? 1 : 0);
  }

  deleteAllocation(containerId: string, subnet: string): void {
    this.stmts.del.run(containerId, subnet);
  }

  clearAllocations(): void {
    this.stmts.clear.run();
  }

  /** Idempotent. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
