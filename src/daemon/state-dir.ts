import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import { isPeerName, randomPeerName, type PeerName } from '../core/ids.js';
import { isAlive } from '../os/process.js';
import { writeFileDurable } from '../os/durable-file.js';
import { storageFailure } from '../os/storage-error.js';

/**
 * The daemon's files in STATE_DIR: `peer-name` (generated once, kept across restarts),
 * `loom.pid` (present while a daemon runs; guards against a second one) and `loom.log`
 * (stdout/stderr of a background daemon).
 */
export class StateDir {
  readonly peerNameFile: string;
  readonly pidFile: string;
  readonly logFile: string;

  constructor(readonly path: string) {
    this.peerNameFile = join(path, 'peer-name');
    this.pidFile = join(path, 'loom.pid');
    this.logFile = join(path, 'loom.log');
  }

  /** Creates the directory if needed. Idempotent. */
  ensure(): void {
    try {
      mkdirSync(this.path, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new LoomError('ERR_INVALID_CONFIG', `cannot create state dir ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }

  /**
   * The stored peer name, created on first use. `override` (from --name) wins for this run and
   * is not stored. A file that does not hold a peer name is ERR_INVALID_CONFIG, never replaced.
   */
  peerName(override?: PeerName): PeerName {
    if (override) return override;
    const stored = readOptional(this.peerNameFile);
    if (stored !== null) {
      const name = stored.trim().toLowerCase();
      if (!isPeerName(name)) throw new LoomError('ERR_INVALID_CONFIG', `${this.peerNameFile} does not hold a peer name; fix or delete it`);
      return name;
    }
    const name = randomPeerName();
    writeFileDurable(this.peerNameFile, name + '\n', 0o644);
    return name;
  }

  /** The pid in the pid file if that process is alive; null if none or stale. */
  runningPid(): number | null {
    const text = readOptional(this.pidFile);
    if (text === null) return null;
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    return isAlive(pid) ? pid : null;
  }

  /**
   * Claims the state dir for `pid`: ERR_CONFLICT if another live daemon holds it; a stale pid
   * file (its process is gone) is replaced. The exclusive create makes two racing starts safe.
   */
  acquire(pid: number = process.pid): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.pidFile, 'wx', 0o644);
        try {
          writeSync(fd, `${pid}\n`);
        } finally {
          closeSync(fd);
        }
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw storageFailure(err, this.pidFile) ?? new LoomError('ERR_INVALID_CONFIG', `cannot write ${this.pidFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
        const running = this.runningPid();
        if (running !== null && running !== pid) throw alreadyRunning(this.path, running);
        if (running === pid) return;
        unlinkQuiet(this.pidFile);
      }
    }
    throw new LoomError('ERR_CONFLICT', `another process keeps creating ${this.pidFile}`);
  }

  /** Removes the pid file if it still names `pid`. Idempotent. */
  release(pid: number = process.pid): void {
    const text = readOptional(this.pidFile);
    if (text !== null && Number(text.trim()) === pid) unlinkQuiet(this.pidFile);
  }

  /** ERR_CONFLICT if a live daemon holds this state dir. */
  assertNotRunning(): void {
    const running = this.runningPid();
    if (running !== null) throw alreadyRunning(this.path, running);
  }
}

function alreadyRunning(path: string, pid: number): LoomError {
  return new LoomError('ERR_CONFLICT', `a router is already running from ${path} (pid ${pid}); stop it first (loom stop)`, { detail: { pid } });
}

function readOptional(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').slice(0, 4096);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LoomError('ERR_INVALID_CONFIG', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Signal 0 probes existence; EPERM means alive but someone else's. */
export { isAlive };
