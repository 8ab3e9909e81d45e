/**
 * Pure searches over a peer's owned space: the first free address and the largest free run.
 * "Taken" means allocated to a container or released but still inside its grace period.
 */
import type { Address } from './cidr.js';
import type { Interval } from './ring.js';

/** `owned` clipped to `limit` (both sorted, half-open). */
export function clip(owned: readonly Interval[], limit: Interval): Interval[] {
  const out: Interval[] = [];
  for (const r of owned) {
    const start = Math.max(r.start, limit.start);
    const end = Math.min(r.end, limit.end);
    if (start < end) out.push({ start, end });
  }
  return out;
}

export function totalSize(runs: readonly Interval[]): number {
  let n = 0;
  for (const r of runs) n += r.end - r.start;
  return n;
}

/**
 * The first address in `runs` at or after `cursor` (wrapping round) that is not taken.
 * Examines at most `totalSize(runs)` addresses; with a cursor that follows the last allocation
 * the usual cost is one probe.
 */
export function findFree(runs: readonly Interval[], isTaken: (a: Address) => boolean, cursor: Address): Address | undefined {
  const ordered = runs.filter((r) => r.end > cursor).concat(runs.filter((r) => r.end <= cursor));
  for (const r of ordered) {
    for (let a = Math.max(r.start, r.start <= cursor && cursor < r.end ? cursor : r.start); a < r.end; a++) {
      if (!isTaken(a)) return a;
    }
  }
  // The run holding the cursor was only scanned from the cursor on; scan its head too.
  for (const r of runs) {
    if (r.start < cursor && cursor < r.end) {
      for (let a = r.start; a < cursor; a++) if (!isTaken(a)) return a;
    }
  }
  return undefined;
}

/** The longest run of untaken addresses inside `runs`; `taken` need not be sorted. */
export function largestFreeRun(runs: readonly Interval[], taken: Iterable<Address>): Interval | undefined {
  const sorted = [...taken].sort((a, b) => a - b);
  let best: Interval | undefined;
  let k = 0;
  for (const r of runs) {
    let start = r.start;
    while (k < sorted.length && sorted[k]! < r.start) k++;
    while (k < sorted.length && sorted[k]! < r.end) {
      const t = sorted[k]!;
      if (t > start && (!best || t - start > best.end - best.start)) best = { start, end: t };
      start = Math.max(start, t + 1);
      k++;
    }
    if (r.end > start && (!best || r.end - start > best.end - best.start)) best = { start, end: r.end };
  }
  return best;
}
