/** Facts about a process read from /proc, for the chaos scenarios and the benchmarks. */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** A process's open fds, and how many of them are sockets. */
export function fdCounts(pid: number): { fds: number; sockets: number } {
  let fds = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    fds++;
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  return { fds, sockets };
}

/** utime + stime of a process in clock ticks, or null when it is gone. */
export function cpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/** One thread's scheduler counters (cumulative since it started). */
export interface ThreadSched {
  tid: number;
  name: string;
  /** Time on a CPU. */
  runNs: number;
  /** Time runnable but waiting for a CPU (run-queue delay). */
  waitNs: number;
  /** Times it was put on a CPU. */
  slices: number;
  /** Times it was taken off a CPU while still runnable (preempted). */
  involuntary: number;
}

/**
 * Every thread of `pid` with its scheduler counters (/proc/PID/task/TID/schedstat and status),
 * or [] when the process is gone. A thread that ends while being read is left out.
 */
export function threadScheds(pid: number): ThreadSched[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: ThreadSched[] = [];
  for (const tid of tids) {
    try {
      const [run, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const name = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '?';
      const involuntary = Number(/^nonvoluntary_ctxt_switches:\s*(\d+)$/m.exec(status)?.[1] ?? NaN);
      out.push({ tid: Number(tid), name, runNs: run ?? NaN, waitNs: wait ?? NaN, slices: slices ?? NaN, involuntary });
    } catch {
      // ended meanwhile
    }
  }
  return out;
}
