/**
 * Process liveness from /proc, synchronous so that it also works in an 'exit' hook.
 * A killed process whose parent is gone stays a zombie until PID 1 reaps it (about 1.5 s on these
 * machines): for "is the daemon still running?" a zombie counts as gone.
 */
import { readFileSync } from 'node:fs';

/** True if `pid` exists and is not a zombie (EPERM counts as existing). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return processState(pid) !== 'Z';
}

/**
 * True while the PID exists at all, zombies included. A killed daemon whose parent is gone stays
 * a zombie until PID 1 reaps it (about 1.5 s on these machines), and tools that check liveness
 * with kill(pid, 0) still see it.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One-letter state from /proc/PID/stat ("R", "S", "Z"...), or null if gone. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) || null;
  } catch {
    return null;
  }
}
