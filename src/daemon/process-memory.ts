/**
 * The router process's memory settings that cannot come from its command line: glibc malloc's
 * arena count and trim threshold (src/os/malloc.ts; a background launch also sets them in the
 * environment, DAEMON_MALLOC_ENV in background.ts), and a malloc_trim once a minute so memory
 * freed after a burst (container churn, a traffic peak) goes back to the kernel instead of
 * staying in the arenas. V8's own settings are Node flags (DAEMON_NODE_FLAGS in background.ts).
 * Called by `loom launch --foreground` only: tests that run daemons inside their own process
 * leave that process's malloc alone.
 */
import { trimMalloc, tuneMalloc } from '../os/malloc.js';
import { MALLOC_ENV_MARK } from './background.js';

export const TRIM_INTERVAL_MS = 60_000;

/** The variables named in `env[mark]` ("A,B": the malloc settings a background launch added), and the mark, removed from `env`. */
export function dropMarkedEnv(env: NodeJS.ProcessEnv, mark: string): string[] {
  const names = (env[mark] ?? '').split(',').filter((n) => /^MALLOC_[A-Z_]+$/.test(n));
  for (const n of names) delete env[n];
  delete env[mark];
  return names;
}

/**
 * Applies the settings and starts the trim timer (unref'd); returns what stops the timer. `env`
 * (the process's own) loses the malloc variables a background launch set for this process only.
 */
export function tuneProcessMemory(env: NodeJS.ProcessEnv, intervalMs: number = TRIM_INTERVAL_MS): () => void {
  dropMarkedEnv(env, MALLOC_ENV_MARK);
  if (!tuneMalloc()) return () => {};
  const timer = setInterval(trimMalloc, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
