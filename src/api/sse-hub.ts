/**
 * Server-sent events for the live page (`GET /ui/events`): each client gets one `snapshot` event
 * with the whole report when it connects, then one `loom-event` per event-log entry as it
 * happens, and a fresh `snapshot` at most every `minSnapshotIntervalMs` after a change (and every
 * `refreshMs` while anyone listens, so rates and RTTs move), plus a comment line every
 * `heartbeatMs` so proxies and browsers keep the connection.
 *
 * Contracts:
 * - At most `maxClients` streams; `hasRoom` says whether one more is taken (the route answers
 *   ERR_UNAVAILABLE otherwise). A stream is forgotten when its client goes away or lags by more
 *   than `maxBufferedBytes` (it is ended then; a browser's EventSource reconnects and starts over
 *   with a snapshot).
 * - Timers run only while at least one client listens; `close` ends every stream and stops them.
 * - The snapshot is built once per send, for all clients (one `report()` however many listen).
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { ResponseStream } from './route-table.js';

export interface SseHubComponents {
  clock: Clock;
  logger: Logger;
  /** The whole state the page draws (the report, with its `events` section). */
  snapshot: () => unknown;
}

export interface SseHubInit {
  /** Default 16. */
  maxClients?: number;
  /** Default 1000 ms: after a change, the next snapshot goes out no sooner than this after the last one. */
  minSnapshotIntervalMs?: number;
  /** Default 2000 ms: a snapshot this often while clients listen, changed or not (counters move). 0 = never. */
  refreshMs?: number;
  /** Default 15000 ms. */
  heartbeatMs?: number;
  /** Default 1 MiB: a client this far behind is dropped. */
  maxBufferedBytes?: number;
}

export const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8';

/** One SSE message: `event: NAME` and the JSON on one `data:` line (JSON has no raw newlines). */
export function formatSseMessage(event: string, data: unknown, id?: number): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export class SseHub {
  private readonly clients = new Set<ResponseStream>();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly snapshot: () => unknown;
  private readonly maxClients: number;
  private readonly minSnapshotIntervalMs: number;
  private readonly refreshMs: number;
  private readonly heartbeatMs: number;
  private readonly maxBufferedBytes: number;
  private lastSnapshotAt = Number.NEGATIVE_INFINITY;
  private pendingSnapshot: TimerHandle | null = null;
  private refreshTimer: TimerHandle | null = null;
  private heartbeatTimer: TimerHandle | null = null;
  private snapshotsSent = 0;

  constructor(components: SseHubComponents, init: SseHubInit = {}) {
    this.clock = components.clock;
    this.logger = components.logger;
    this.snapshot = components.snapshot;
    this.maxClients = init.maxClients ?? 16;
    this.minSnapshotIntervalMs = init.minSnapshotIntervalMs ?? 1000;
    this.refreshMs = init.refreshMs ?? 2000;
    this.heartbeatMs = init.heartbeatMs ?? 15_000;
    this.maxBufferedBytes = init.maxBufferedBytes ?? 1 << 20;
  }

  hasRoom(): boolean {
    return this.clients.size < this.maxClients;
  }

  clientCount(): number {
    return this.clients.size;
  }

  /** Snapshots written since start (to all clients at once counting as one). */
  snapshotCount(): number {
    return this.snapshotsSent;
  }

  /** Takes a client's open stream: sends it a snapshot now. Returns false (and ends it) when full. */
  connect(out: ResponseStream): boolean {
    if (!this.hasRoom()) {
      out.end();
      return false;
    }
    this.clients.add(out);
    out.onClose(() => this.forget(out));
    // Tell EventSource to wait 1 s before reconnecting after a drop.
    out.write(`retry: 1000\n${formatSseMessage('snapshot', this.buildSnapshot())}`);
    if (this.clients.size === 1) this.startTimers();
    return true;
  }

  /** Sends `event` to every client now and schedules a snapshot (throttled). */
  publish(event: string, data: unknown, id?: number): void {
    if (this.clients.size === 0) return;
    this.broadcast(formatSseMessage(event, data, id));
    this.changed();
  }

  /** Something the snapshot shows has changed: a snapshot goes out within `minSnapshotIntervalMs`. */
  changed(): void {
    if (this.clients.size === 0 || this.pendingSnapshot !== null) return;
    const wait = Math.max(0, this.lastSnapshotAt + this.minSnapshotIntervalMs - this.clock.now());
    this.pendingSnapshot = this.clock.setTimeout(() => {
      this.pendingSnapshot = null;
      this.sendSnapshot();
    }, wait);
  }

  /** Ends every stream and stops the timers. Idempotent. */
  close(): void {
    for (const out of [...this.clients]) {
      this.clients.delete(out);
      out.end();
    }
    this.stopTimers();
  }

  private sendSnapshot(): void {
    if (this.clients.size === 0) return;
    this.broadcast(formatSseMessage('snapshot', this.buildSnapshot()));
  }

  private buildSnapshot(): unknown {
    this.lastSnapshotAt = this.clock.now();
    this.snapshotsSent++;
    return this.snapshot();
  }

  private broadcast(chunk: string): void {
    for (const out of [...this.clients]) {
      if (out.buffered() > this.maxBufferedBytes) {
        this.logger.warn({ buffered: out.buffered() }, 'live page client too slow: dropped');
        this.clients.delete(out);
        out.end();
        continue;
      }
      out.write(chunk);
    }
    if (this.clients.size === 0) this.stopTimers();
  }

  private forget(out: ResponseStream): void {
    if (!this.clients.delete(out)) return;
    if (this.clients.size === 0) this.stopTimers();
  }

  private startTimers(): void {
    if (this.refreshMs > 0) this.refreshTimer = this.clock.setInterval(() => this.changed(), this.refreshMs);
    this.heartbeatTimer = this.clock.setInterval(() => this.broadcast(': keep-alive\n\n'), this.heartbeatMs);
  }

  private stopTimers(): void {
    this.pendingSnapshot?.cancel();
    this.pendingSnapshot = null;
    this.refreshTimer?.cancel();
    this.refreshTimer = null;
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = null;
  }
}
