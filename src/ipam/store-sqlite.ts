/**
 * IPAM state in STATE_DIR/ipam.db (better-sqlite3 v12), journal_mode=WAL.
 *
 * Durability (the argument is in docs/IPAM.md, "Persistence"):
 * - Ring writes are always fsynced (synchronous=FULL for that commit): losing space we gave
 *   away could make us hand out an address another peer now owns, silently.
 * - Allocation rows are committed with synchronous=NORMAL by default: a commit survives a
 *   kill -9 of the process (the WAL is in the OS's page cache); only an OS crash or power loss
 *   can lose the last ones, and that also ends every container that held them.
 * - With `groupCommit`, allocation writes are queued and committed together in one transaction
 *   at the end of the event-loop turn (setImmediate). A caller must await `durable()` before it
 *   tells anyone about a queued write; a ring write commits the queue first, in order.
 * A torn write is rolled back by SQLite on open.
 * A commit the disk refuses (full, read-only, I/O error) is ERR_STORAGE naming the file; SQLite
 * rolls the transaction back, so the file keeps the last commit whole.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import { storageFailure } from '../os/storage-error.js';
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

export const IPAM_DB_FILE = 'ipam.db';
/** The database and the files SQLite keeps beside it in WAL mode. */
export const IPAM_DB_FILES = [IPAM_DB_FILE, `${IPAM_DB_FILE}-wal`, `${IPAM_DB_FILE}-shm`] as const;

export interface SqliteStoreOptions {
  /** Commit level of allocation rows: NORMAL (default, survives kill -9) or FULL (also power loss). */
  synchronous?: 'FULL' | 'NORMAL';
  /** Queue allocation writes and commit them once per event-loop turn (default false). */
  groupCommit?: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (err: LoomError) => void;
}

export class SqliteStore implements IpamStore {
  private readonly db: Database.Database;
  private readonly stmts;
  private readonly allocationSync: 'FULL' | 'NORMAL';
  private readonly groupCommit: boolean;
  private queued: Array<() => void> = [];
  private waiters: Waiter[] = [];
  private flushScheduled = false;
  private readonly commitQueued: () => void;
  /** Transactions committed, and writes in them: the bench reports the batch size. */
  readonly commits = { transactions: 0, writes: 0 };

  /** Opens (creating if needed) `<stateDir>/ipam.db`. ERR_STORAGE if the disk refuses, else ERR_INVALID_CONFIG if it cannot. */
  constructor(stateDir: string, options: SqliteStoreOptions = {}) {
    this.allocationSync = options.synchronous ?? 'NORMAL';
    this.groupCommit = options.groupCommit ?? false;
    const file = join(stateDir, IPAM_DB_FILE);
    try {
      mkdirSync(stateDir, { recursive: true });
      this.db = new Database(join(stateDir, IPAM_DB_FILE));
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${this.allocationSync}`);
      this.db.exec(SCHEMA);
    } catch (err) {
      throw storageFailure(err, file, 'open') ?? new LoomError('ERR_INVALID_CONFIG', `cannot open IPAM state in ${stateDir}`, { cause: err });
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
    const runAll = this.db.transaction((ops: Array<() => void>) => {
      for (const op of ops) op();
    });
    this.commitQueued = () => {
      const ops = this.queued;
      const waiters = this.waiters;
      this.queued = [];
      this.waiters = [];
      try {
        if (ops.length > 0) {
          runAll(ops);
          this.commits.transactions++;
          this.commits.writes += ops.length;
        }
      } catch (err) {
        const e = storageFailure(err, file) ?? new LoomError('ERR_INTERNAL', 'could not write IPAM state', { cause: err });
        for (const w of waiters) w.reject(e);
        throw e;
      }
      for (const w of waiters) w.resolve();
    };
  }

  load(): IpamState {
    this.flush();
    const row = this.stmts.getRing.get();
    return {
      ring: row ? new Uint8Array(row.bytes) : null,
      allocations: this.stmts.all.all().map((r) => ({ containerId: r.container_id, subnet: r.subnet, address: r.address, released: r.released !== 0 })),
    };
  }

  /** Commits queued allocation writes and the ring together, fsynced, before returning. */
  saveRing(bytes: Uint8Array): void {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.queued.push(() => this.stmts.putRing.run(buffer));
    if (this.allocationSync === 'FULL') return this.flush();
    this.db.pragma('synchronous = FULL');
    try {
      this.flush();
    } finally {
      this.db.pragma(`synchronous = ${this.allocationSync}`);
    }
  }

  putAllocation(a: StoredAllocation): void {
    this.write(() => this.stmts.put.run(a.containerId, a.subnet, a.address, a.released ? 1 : 0));
  }

  deleteAllocation(containerId: string, subnet: string): void {
    this.write(() => this.stmts.del.run(containerId, subnet));
  }

  clearAllocations(): void {
    this.write(() => this.stmts.clear.run());
  }

  /** Resolves once every write made so far is committed; rejects (ERR_STORAGE, else ERR_INTERNAL) if that commit failed. */
  durable(): Promise<void> {
    if (this.queued.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Commits whatever is queued now. Throws ERR_STORAGE (the disk refused) or ERR_INTERNAL if the commit fails. */
  flush(): void {
    this.commitQueued();
  }

  /** Commits what is queued, then closes. Idempotent. */
  close(): void {
    if (!this.db.open) return;
    try {
      this.flush();
    } finally {
      this.db.close();
    }
  }

  private write(op: () => void): void {
    this.queued.push(op);
    if (!this.groupCommit) return this.flush();
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.db.open) return;
      try {
        this.flush();
      } catch {
        // The waiters got the error; the next write tries again.
      }
    });
  }
}
