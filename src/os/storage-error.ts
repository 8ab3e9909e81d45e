/**
 * Failures of the storage under the state directory (disk full, read-only file system, I/O
 * error), from Node's errno codes or SQLite's result codes, as one LoomError ERR_STORAGE whose
 * message names the file and the reason a user can act on. Pure.
 */
import { LoomError } from '../core/errors.js';

/** Why a write failed, for people, by errno code. */
const ERRNO_REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  EIO: 'the disk reported an I/O error',
};

/** SQLite's (extended) result codes by prefix; better-sqlite3 puts them in `code`. */
const SQLITE_REASONS: ReadonlyArray<readonly [string, string]> = [
  ['SQLITE_FULL', 'the disk is full'],
  ['SQLITE_READONLY', 'the database cannot be written (read-only file system or file)'],
  ['SQLITE_IOERR', 'the disk reported an I/O error'],
  ['SQLITE_CANTOPEN', 'the database file cannot be opened'],
];

/** strerror(3) texts, as a failed command (mkfifo, mount) prints them on stderr. */
const STRERROR_CODES: ReadonlyArray<readonly [string, string]> = [
  ['No space left on device', 'ENOSPC'],
  ['Disk quota exceeded', 'EDQUOT'],
  ['Read-only file system', 'EROFS'],
];

/**
 * The errno or SQLite code of `err` or of any error in its `cause` chain (bounded), if it is a
 * storage failure; else the errno a failed command's message names by its strerror text; else null.
 */
export function storageErrorCode(err: unknown): string | null {
  let e: unknown = err;
  const messages: string[] = [];
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && reasonOf(code) !== null) return code;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string') messages.push(message);
    e = (e as { cause?: unknown }).cause;
  }
  for (const m of messages) for (const [text, code] of STRERROR_CODES) if (m.includes(text)) return code;
  return null;
}

function reasonOf(code: string): string | null {
  return ERRNO_REASONS[code] ?? SQLITE_REASONS.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`))?.[1] ?? null;
}

/**
 * ERR_STORAGE for `err` when it is a storage failure ("cannot write PATH: the disk is full
 * (ENOSPC)"), else null. PATH is the error's own `path` when Node gave one, else `path`. An error
 * that already is ERR_STORAGE comes back as it is.
 */
export function storageFailure(err: unknown, path: string, doing = 'write'): LoomError | null {
  if (err instanceof LoomError && err.code === 'ERR_STORAGE') return err;
  const code = storageErrorCode(err);
  if (code === null) return null;
  const own = typeof err === 'object' && err !== null ? (err as { path?: unknown }).path : undefined;
  const where = typeof own === 'string' ? own : path;
  return new LoomError('ERR_STORAGE', `cannot ${doing} ${where}: ${reasonOf(code)!} (${code})`, { cause: err, detail: { path: where, errno: code } });
}
