/**
 * State files that survive a crash or a power cut whole: after `writeFileDurable` returns, the
 * file holds the new content, and at any moment before that it holds the old content (or does not
 * exist, if it did not), never half of either and never nothing.
 *
 * How: write a temp file in the same directory (rename is atomic only within one file system),
 * fsync it (else the rename can reach the disk before the data, and a crash leaves an empty file),
 * rename it over the target, fsync the directory (else the rename itself can be lost). Synchronous,
 * because its callers are; the files are small.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { storageFailure } from './storage-error.js';

/** The file operations the durable write uses: Node's, or a test's that fail on cue. */
export interface DurableFileOps {
  openSync(path: string, flags: string, mode?: number): number;
  writeFileSync(fd: number, data: string | Uint8Array): void;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
}

const NODE_FILE_OPS: DurableFileOps = { openSync, writeFileSync, fsyncSync, closeSync, renameSync, unlinkSync };

/**
 * Replaces `path` with `data`, durably and atomically (see above). The directory must exist. The
 * file gets `mode` less the umask (as open(2) would give a new file), whatever mode an earlier file
 * had. On failure the error is thrown and the temp file is removed; the target is untouched unless
 * only the final directory fsync failed (then the new content is in place but not known durable).
 * Concurrent writers of one path are safe (each has its own temp name); the last rename wins.
 * A full disk, a read-only file system or an I/O error is thrown as LoomError ERR_STORAGE naming
 * the file and the reason (src/os/storage-error.ts); any other error is thrown as Node gave it.
 */
export function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o666, fs: DurableFileOps = NODE_FILE_OPS): void {
  try {
    writeDurable(fs, path, data, mode);
  } catch (err) {
    throw storageFailure(err, path) ?? err;
  }
}

function writeDurable(fs: DurableFileOps, path: string, data: string | Uint8Array, mode: number): void {
  const dir = dirname(path);
  // Hidden, so that folder listings (the containers store) skip it; unique, so that a temp file a
  // crashed process left behind is never reused with its old mode.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // Gone already, or the directory refuses: the first error is the one to report.
    }
    throw err;
  }
  fsyncDirectory(fs, dir);
}

/** Makes the directory's entries (a rename into it) durable. */
function fsyncDirectory(fs: DurableFileOps, dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    // A file system that cannot sync a directory says EINVAL; there is nothing more to ask of it.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    fs.closeSync(fd);
  }
}
