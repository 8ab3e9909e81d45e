/**
 * One malloc_trim(0) shortly after the router is up. Start-up allocates and frees a burst of
 * native memory (V8 parsing the 1 MB daemon bundle and compiling what runs first, the first peer
 * handshakes, SQLite opening its databases); glibc keeps the freed memory in its arenas until a
 * trim, and the periodic one (src/daemon/process-memory.ts) comes only after a minute. Measured
 * (docs/BENCHMARKS.md, issue 14 "Memory"): 0.1-4 MB of an idle router's RSS 25 s after start,
 * different on each router, went back with the trim. Cancelled by what it returns; unref'd, so it
 * never holds the process. Not glibc or koffi unavailable: the trim reports false and does nothing.
 */
import { trimMalloc } from '../os/malloc.js';

export const STARTUP_TRIM_DELAY_MS = 10_000;

/** Schedules the trim `delayMs` from now; returns what cancels it. `trim` is malloc_trim(0) (tests pass their own). */
export function trimAfterStartup(delayMs: number = STARTUP_TRIM_DELAY_MS, trim: () => boolean = trimMalloc): () => void {
  const timer = setTimeout(trim, delayMs);
  timer.unref();
  return () => clearTimeout(timer);
}
