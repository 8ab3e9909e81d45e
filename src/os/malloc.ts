/**
 * glibc malloc settings for the long-running daemon, set from inside the process (mallopt), so
 * they hold however the router was started (background launch, systemd, a DaemonSet) and are not
 * passed on to the containers it starts, as MALLOC_* environment variables would be.
 *
 * Why (measured, docs/BENCHMARKS.md issue 14 "Memory"): a router's native allocations come from
 * several threads (V8's compiler and GC threads, libuv's pool, SQLite, koffi); glibc gives each
 * thread arena up to 8 x cores arenas and keeps freed memory in them. Two arenas and a 128 KiB
 * trim threshold (free memory above it at the top of the heap goes back to the kernel) took
 * 4-7 MB off an idle router's RSS. `trim()` (malloc_trim(0)) also returns free pages in the
 * middle of every arena; the daemon calls it once a minute (src/daemon/process-memory.ts).
 *
 * Not glibc (musl) or koffi unavailable: nothing is changed and the calls report false.
 */
import { libc } from './libc.js';

const M_TRIM_THRESHOLD = -1;
const M_ARENA_MAX = -8;

export const ARENA_MAX = 2;
export const TRIM_THRESHOLD_BYTES = 128 * 1024;

interface MallocCalls {
  mallopt(param: number, value: number): number;
  mallocTrim(pad: number): number;
}

let calls: MallocCalls | null | undefined;

function load(): MallocCalls | null {
  if (calls !== undefined) return calls;
  try {
    const lib = libc();
    calls = { mallopt: lib.func('int mallopt(int, int)'), mallocTrim: lib.func('int malloc_trim(size_t)') };
  } catch {
    calls = null;
  }
  return calls;
}

/** Sets the arena count and trim threshold; true when glibc took both. Idempotent. */
export function tuneMalloc(): boolean {
  const c = load();
  if (!c) return false;
  return c.mallopt(M_ARENA_MAX, ARENA_MAX) === 1 && c.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) === 1;
}

/** malloc_trim(0): gives free memory of every arena back to the kernel; true when some was. */
export function trimMalloc(): boolean {
  const c = load();
  return c ? c.mallocTrim(0) === 1 : false;
}
