/**
 * The few facts about host processes the runtime needs, behind an interface so that the watcher
 * and removal logic are tested with a fake. Reads /proc synchronously (cheap, and usable from an
 * exit hook). A process counts as ours only while its start time matches the one recorded.
 */
import { readFileSync, readlinkSync } from 'node:fs';

export interface ProcessTable {
  /** Start time (clock ticks since boot) of a live process, or null if gone or a zombie. */
  startTime(pid: number): number | null;
  /** Children of `pid` (needs CONFIG_PROC_CHILDREN, present on every kernel Loom targets). */
  children(pid: number): number[];
  /** True if `pid` is in a different PID namespace from this process. */
  inOtherPidNamespace(pid: number): boolean;
  /** Sends a signal; a missing process is not an error. */
  signal(pid: number, signal: NodeJS.Signals): void;
}

export const procProcessTable: ProcessTable = {
  startTime(pid) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Field 2 (comm) may hold spaces and parentheses: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X') return null;
      const start = Number(fields[19]);
      return Number.isFinite(start) ? start : null;
    } catch {
      return null;
    }
  },
  children(pid) {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter((s) => s !== '')
        .map(Number);
    } catch {
      return [];
    }
  },
  inOtherPidNamespace(pid) {
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`) !== readlinkSync('/proc/self/ns/pid');
    } catch {
      return false;
    }
  },
  signal(pid, signal) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  },
};
