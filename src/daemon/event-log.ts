/**
 * The daemon's event log: a ring of the last `capacity` events (default 500) that every subsystem
 * writes to through the core `EventSink` interface (src/core/events.ts), read by `GET /events`,
 * the `events` report section and the live page's stream (src/api/ui-stream.ts).
 *
 * Contracts: `emit` is O(1) and never throws; a listener that throws is logged and skipped; the
 * ring holds at most `capacity` events, oldest dropped first; `seq` increases by one per event
 * for the daemon's lifetime, so a reader can ask for what came after the last one it saw. Each
 * event is also a debug log line: the subsystems log their state changes at info themselves.
 */
import type { EventInput, EventSink, LoomEvent } from '../core/events.js';
import type { Logger } from '../core/logger.js';

export const DEFAULT_EVENT_CAPACITY = 500;

export interface EventLogComponents {
  logger: Logger;
  /** Wall-clock time in ms since the epoch; default Date.now (tests pass a fake). */
  wallClock?: () => number;
}

export class EventLog implements EventSink {
  private readonly ring: Array<LoomEvent | undefined>;
  /** Index the next event goes to. */
  private head = 0;
  private count = 0;
  private nextSeq = 1;
  private readonly listeners = new Set<(event: LoomEvent) => void>();
  private readonly logger: Logger;
  private readonly wallClock: () => number;

  constructor(components: EventLogComponents, readonly capacity: number = DEFAULT_EVENT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`event log capacity must be a positive integer, got ${capacity}`);
    this.logger = components.logger;
    this.wallClock = components.wallClock ?? Date.now;
    this.ring = new Array<LoomEvent | undefined>(capacity);
  }

  emit(input: EventInput): void {
    const event: LoomEvent = { seq: this.nextSeq++, time: this.wallClock(), ...input };
    this.ring[this.head] = event;
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    this.logger.debug({ event: event.kind, ...(event.peer === undefined ? {} : { peer: event.peer }), ...(event.container === undefined ? {} : { container: event.container }) }, event.text);
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'event listener failed');
      }
    }
  }

  /** Events oldest first; with `afterSeq`, only those numbered above it; with `limit`, the newest `limit` of those. */
  list(options: { afterSeq?: number; limit?: number } = {}): LoomEvent[] {
    const out: LoomEvent[] = [];
    const start = (this.head - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const event = this.ring[(start + i) % this.capacity]!;
      if (options.afterSeq === undefined || event.seq > options.afterSeq) out.push(event);
    }
    return options.limit === undefined || out.length <= options.limit ? out : out.slice(out.length - options.limit);
  }

  /** The number the next event will get, minus one: the newest `seq` so far (0 before any). */
  lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** Calls `listener` after each event is stored; returns the unsubscribe function. */
  subscribe(listener: (event: LoomEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
