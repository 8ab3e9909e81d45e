/**
 * The quiet GC (./quiet-gc.ts) on this process's own V8 and malloc: started by
 * `loom launch --foreground` only (like ./process-memory.ts), so tests and benchmarks that run
 * daemons or servers inside their own process never collect from a timer.
 *
 * - The collection: V8's `gc` from a context made while `--expose-gc` is set
 *   (v8.setFlagsFromString, then the flag is cleared again so no later context sees `gc`), or the
 *   global one when Node was started with --expose-gc; then malloc_trim (src/os/malloc.ts).
 * - Busy: the event loop's utilization between two checks (perf_hooks), which sees traffic (the
 *   relay, DNS), gossip and API work alike.
 * - Churn: every HTTP request other than GET/HEAD to any server of this process (the API's local
 *   socket, Docker's plugin socket), from diagnostics_channel `http.server.request.start`.
 * Status: report section `memory` (`quietGc`) and `loom_memory_quiet_gc_*` metrics.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { ApiServer } from '../api/server.js';
import { createSnapshotMetrics, type MetricSpec } from '../api/snapshot-metrics.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { trimMalloc } from '../os/malloc.js';
import { QuietGc, type QuietGcInit, type QuietGcProbes, type QuietGcStatus } from './quiet-gc.js';

const REQUEST_START = 'http.server.request.start';
const READ_ONLY = new Set(['GET', 'HEAD']);

let fullGc: (() => void) | null | undefined;

/** V8's full collection, or null when it cannot be had. Obtained once. */
function v8FullGc(): (() => void) | null {
  if (fullGc !== undefined) return fullGc;
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === 'function') return (fullGc = global as () => void);
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    v8.setFlagsFromString('--no-expose-gc');
    fullGc = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    fullGc = null;
  }
  return fullGc;
}

export const QUIET_GC_METRICS: ReadonlyArray<MetricSpec<QuietGcStatus>> = [
  { name: 'loom_memory_quiet_gc_total', help: 'Full collections (and malloc trims) run because the router went quiet after its heap grew', kind: 'counter', value: (s) => s.collections },
  { name: 'loom_memory_quiet_gc_pause_seconds_total', help: 'Time the event loop was held by those collections', kind: 'counter', value: (s) => s.totalPauseMs / 1000 },
  { name: 'loom_memory_quiet_gc_max_pause_seconds', help: 'Longest of those pauses', kind: 'gauge', value: (s) => s.maxPauseMs / 1000 },
  { name: 'loom_memory_quiet_seconds', help: 'How long the router had been quiet (no busy event loop, no mutating API call) at the last check', kind: 'gauge', value: (s) => s.quietForMs / 1000 },
];

/** The quiet GC's probes on this process, or null when V8's gc cannot be had. */
export function processGcProbes(): QuietGcProbes | null {
  const gc = v8FullGc();
  if (gc === null) return null;
  let elu: EventLoopUtilization = performance.eventLoopUtilization();
  return {
    busyFraction() {
      const now = performance.eventLoopUtilization();
      const window = performance.eventLoopUtilization(now, elu);
      elu = now;
      return window.utilization;
    },
    heapCommittedBytes: () => v8.getHeapStatistics().total_heap_size,
    heapUsedBytes: () => v8.getHeapStatistics().used_heap_size,
    collect(compact) {
      const t0 = performance.now();
      if (compact) {
        // Read by V8 at each full GC; set for this one only.
        v8.setFlagsFromString('--compact-on-every-full-gc');
        try {
          gc();
        } finally {
          v8.setFlagsFromString('--no-compact-on-every-full-gc');
        }
      } else gc();
      const t1 = performance.now();
      trimMalloc();
      return { gcMs: t1 - t0, trimMs: performance.now() - t1 };
    },
  };
}

/**
 * Starts the quiet GC for this process and registers its status with `api`; returns what stops
 * it. Nothing starts (and the stop does nothing) when V8's gc cannot be had.
 */
export function startQuietGc(api: Pick<ApiServer, 'registerReportSection' | 'registerMetrics'>, logger: Logger, init: QuietGcInit = {}): () => void {
  const probes = processGcProbes();
  if (probes === null) {
    logger.warn({ component: 'memory' }, 'no quiet GC: V8 gives no gc function here');
    return () => {};
  }
  const quiet = new QuietGc({ clock: systemClock, probes, logger: logger.child({ component: 'memory' }) }, init);
  const onRequest = (message: unknown): void => {
    const method = (message as { request?: IncomingMessage }).request?.method;
    if (method !== undefined && !READ_ONLY.has(method)) quiet.noteActivity();
  };
  api.registerReportSection('memory', () => ({ quietGc: quiet.status() }));
  api.registerMetrics('memory', createSnapshotMetrics(() => quiet.status(), QUIET_GC_METRICS));
  subscribe(REQUEST_START, onRequest);
  quiet.start();
  return () => {
    quiet.stop();
    unsubscribe(REQUEST_START, onRequest);
  };
}
