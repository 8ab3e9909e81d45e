/**
 * Finding and stopping the lab's own processes. Every command the lab runs carries the
 * environment variable LOOM_LAB=<prefix>, inherited by whatever it starts (a daemon forked by
 * `loom launch`, say). A process is "ours" only if it sits in one of our namespaces AND carries
 * our marker, so cleanup never touches a process someone else started, even after PID reuse.
 * Everything here is synchronous /proc reading so that it also works in a process 'exit' hook.
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { isAlive } from '../os/process.js';

export const LAB_ENV_MARKER = 'LOOM_LAB';

export { isAlive, pidExists, processState } from '../os/process.js';

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or null if gone. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : null;
  } catch {
    return null;
  }
}

function netnsInode(name: string): number | null {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return null;
  }
}

/** PIDs of processes whose network namespace is one of `names` (named namespaces in /run/netns). */
export function processesInNetns(names: readonly string[]): number[] {
  const inodes = new Set<string>();
  for (const n of names) {
    const ino = netnsInode(n);
    if (ino !== null) inodes.add(`net:[${ino}]`);
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${entry}/ns/net`))) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or a kernel thread we may not inspect
    }
  }
  return pids;
}

export function hasLabMarker(pid: number, prefix: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`${LAB_ENV_MARKER}=${prefix}`);
  } catch {
    return false;
  }
}

/**
 * Our processes: those carrying our marker in one of the given namespaces, and those carrying it
 * in a namespace of their own that the lab never named: a container a router in the lab started
 * (`unshare --net`), which outlives the router by design and would otherwise outlive the lab.
 * The marker holds a per-run random prefix, so it alone says "ours"; the caller's own namespace
 * (the root one) is left out all the same.
 */
export function labProcesses(prefix: string, namespaces: readonly string[]): number[] {
  const inNamed = new Set(processesInNetns(namespaces));
  // Our own namespace stands for the root one (PID 1's is not readable in every sandbox).
  let rootNetns: string | null = null;
  try {
    rootNetns = readlinkSync('/proc/self/ns/net');
  } catch {
    // not readable: only the named namespaces count
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !hasLabMarker(pid, prefix) || !isAlive(pid)) continue;
    if (inNamed.has(pid)) {
      pids.push(pid);
      continue;
    }
    try {
      const netns = readlinkSync(`/proc/${pid}/ns/net`);
      if (rootNetns !== null && netns !== rootNetns) pids.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

export function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * SIGTERM, then SIGKILL whatever is still alive after `graceMs`. Bounded: polls every 50 ms.
 * Resolves with the PIDs that needed SIGKILL.
 */
export async function terminate(pids: readonly number[], graceMs = 3000): Promise<number[]> {
  signal(pids, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    alive = alive.filter(isAlive);
  }
  signal(alive, 'SIGKILL');
  return alive;
}
