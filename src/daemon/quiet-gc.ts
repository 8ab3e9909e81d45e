/**
 * The quiet GC (issue 12, soak): gives memory back once the router goes quiet after churn.
 *
 * Why: during container churn V8 grows its heap (the soak saw 15 -> 27 MB committed) and keeps
 * what it grew once the churn stops, with only 16 MB of it live; that headroom is the RSS a long
 * churn leaves behind (docs/RELIABILITY.md, soak). A full collection gives the pages it empties
 * back (V8 unmaps them within about a second); malloc_trim then returns what glibc holds free.
 * One full collection compacts only some fragmented pages (the soak: 17 MB live, still 25-29 MB
 * committed after one), so while the heap keeps more than `slackBytes` above what is live and
 * the last round gave at least 1 MiB back, another round follows at the next check, at most
 * `maxRounds`: each pause that of one ordinary full GC. When a round gives back less than that
 * (or the rounds run out) with the slack still there, one last round compacts every page
 * (`collect(true)`: V8's --compact-on-every-full-gc for that collection, measured about 2.5x
 * the pause of an ordinary one).
 *
 * When, and only then: at a check (every `checkMs`) the router has been quiet for `quietMs`
 * (no check window busier than `busyFraction` of the event loop, 10 %, no mutating API request:
 * `noteActivity`) and V8's committed heap is at least `growthBytes` above its size after the last
 * collection (or at start). So an idle router never collects (nothing grows: the idle CPU goal),
 * a router under traffic never does (every window is busy), and after a collection nothing
 * happens again until the heap has grown again. The collection holds the event loop for its
 * pause (measured: `lastPauseMs`, metrics `loom_memory_quiet_gc_*`).
 *
 * The scheduler is pure: the clock and the probes (event-loop busy fraction, committed heap, the
 * collection itself) come in, so tests drive it on a fake clock. The real probes are in
 * ./process-gc.ts. Idempotent start and stop.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { LoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export interface QuietGcProbes {
  /** Fraction (0..1) of the time since the previous call the event loop spent running callbacks. */
  busyFraction(): number;
  /** V8's committed heap, bytes. */
  heapCommittedBytes(): number;
  /** V8's used heap (live objects right after a full collection), bytes. */
  heapUsedBytes(): number;
  /** A full GC (compacting every page when `compact`), then malloc_trim; returns the milliseconds the event loop was held by each. */
  collect(compact: boolean): { gcMs: number; trimMs: number };
}

export interface QuietGcInit {
  /** How long without churn before a collection; default 20 s. */
  quietMs?: number;
  /**
   * How often the check runs (the window the event loop's busy fraction is measured over);
   * default a quarter of quietMs, within 2..5 s: a shorter window would call one slow API
   * request (a `/report` of 40 ms on a loaded machine) busy.
   */
  checkMs?: number;
  /** A check window busier than this (event-loop fraction) is churn or traffic; default 0.1. */
  busyFraction?: number;
  /** Committed-heap growth since the last collection that makes one worth its pause; default 2 MiB. */
  growthBytes?: number;
  /** Committed above used after a round that makes another round worth it; default 2 MiB. */
  slackBytes?: number;
  /** Ordinary rounds of collection at most, once the router is quiet (then at most one compacting round); default 3. */
  maxRounds?: number;
}

/** A round that gives back less than this ends the rounds. */
const MIN_ROUND_FREED_BYTES = 1024 * 1024;

export const DEFAULT_QUIET_MS = 20_000;
export const DEFAULT_BUSY_FRACTION = 0.1;
export const DEFAULT_GROWTH_BYTES = 2 * 1024 * 1024;
export const DEFAULT_MAX_ROUNDS = 3;

/** What `/report` section `memory` and the metrics say. */
export interface QuietGcStatus {
  quietMs: number;
  /** How long the router has been quiet (ms), as of the last check. */
  quietForMs: number;
  /**
   * True when, at the last check, the router had been quiet for quietMs and had nothing (more)
   * to give back: its rounds of collection are done, or the heap had not grown. A soak reads
   * RSS only then.
   */
  settled: boolean;
  /** Full collections run (each round counts), and of them those that compacted every page. */
  collections: number;
  compactions: number;
  /** The last collection's pause (GC + trim), and of it the GC's and malloc_trim's parts, ms. */
  lastPauseMs: number | null;
  lastGcMs: number | null;
  lastTrimMs: number | null;
  maxPauseMs: number;
  totalPauseMs: number;
  /** Committed heap after the last collection (or at start), the growth is measured from. */
  baselineBytes: number;
  committedBytes: number;
}

export class QuietGc {
  private readonly clock: Clock;
  private readonly probes: QuietGcProbes;
  private readonly logger: Logger | undefined;
  private readonly quietMs: number;
  private readonly checkMs: number;
  private readonly busyLimit: number;
  private readonly growthBytes: number;
  private readonly slackBytes: number;
  private readonly maxRounds: number;
  /** Rounds still allowed in the current episode (0: none running); the next one compacts every page. */
  private roundsLeft = 0;
  private compactNext = false;
  private compactions = 0;
  private timer: TimerHandle | null = null;
  private lastBusyAt = 0;
  private quietForMs = 0;
  private settled = false;
  private baselineBytes = 0;
  private committedBytes = 0;
  private collections = 0;
  private lastPauseMs: number | null = null;
  private lastGcMs: number | null = null;
  private lastTrimMs: number | null = null;
  private maxPauseMs = 0;
  private totalPauseMs = 0;

  constructor(components: { clock: Clock; probes: QuietGcProbes; logger?: Logger }, init: QuietGcInit = {}) {
    this.clock = components.clock;
    this.probes = components.probes;
    this.logger = components.logger;
    this.quietMs = init.quietMs ?? DEFAULT_QUIET_MS;
    this.checkMs = init.checkMs ?? Math.min(5_000, Math.max(2_000, Math.round(this.quietMs / 4)));
    this.busyLimit = init.busyFraction ?? DEFAULT_BUSY_FRACTION;
    this.growthBytes = init.growthBytes ?? DEFAULT_GROWTH_BYTES;
    this.slackBytes = init.slackBytes ?? DEFAULT_GROWTH_BYTES;
    this.maxRounds = Math.max(1, init.maxRounds ?? DEFAULT_MAX_ROUNDS);
  }

  /** Takes the heap as it is now as the baseline (start-up is not churn to undo) and starts checking. */
  start(): void {
    if (this.timer) return;
    this.lastBusyAt = this.clock.now();
    this.baselineBytes = this.committedBytes = this.probes.heapCommittedBytes();
    this.probes.busyFraction(); // opens the first window
    this.timer = this.clock.setInterval(() => this.check(), this.checkMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Churn happened now (a mutating API request): the quiet period starts again. */
  noteActivity(): void {
    this.lastBusyAt = this.clock.now();
    this.quietForMs = 0;
    this.settled = false;
    this.roundsLeft = 0;
    this.compactNext = false;
  }

  /** One check; the timer calls it (public for tests that step it by hand). */
  check(): void {
    const now = this.clock.now();
    if (this.probes.busyFraction() > this.busyLimit) this.lastBusyAt = now;
    this.quietForMs = now - this.lastBusyAt;
    if (this.quietForMs < this.quietMs) {
      this.settled = false;
      this.roundsLeft = 0;
      this.compactNext = false;
      return;
    }
    this.committedBytes = this.probes.heapCommittedBytes();
    // V8 may shrink the heap itself: later growth counts from the smaller size.
    this.baselineBytes = Math.min(this.baselineBytes, this.committedBytes);
    if (this.roundsLeft === 0 && this.committedBytes - this.baselineBytes >= this.growthBytes) this.roundsLeft = this.maxRounds;
    if (this.roundsLeft > 0) this.collect();
    this.settled = this.roundsLeft === 0;
  }

  status(): QuietGcStatus {
    return {
      quietMs: this.quietMs,
      quietForMs: Math.round(this.quietForMs),
      settled: this.settled,
      collections: this.collections,
      compactions: this.compactions,
      lastPauseMs: this.lastPauseMs,
      lastGcMs: this.lastGcMs,
      lastTrimMs: this.lastTrimMs,
      maxPauseMs: this.maxPauseMs,
      totalPauseMs: this.totalPauseMs,
      baselineBytes: this.baselineBytes,
      committedBytes: this.committedBytes,
    };
  }

  private collect(): void {
    const before = this.committedBytes;
    const compact = this.compactNext;
    const { gcMs, trimMs } = this.probes.collect(compact);
    // The pause is ours, not churn: the next busy window starts after it.
    this.probes.busyFraction();
    const pauseMs = round2(gcMs + trimMs);
    this.lastGcMs = round2(gcMs);
    this.lastTrimMs = round2(trimMs);
    this.committedBytes = this.probes.heapCommittedBytes();
    const freed = before - this.committedBytes;
    const slackLeft = this.committedBytes - this.probes.heapUsedBytes() >= this.slackBytes;
    // roundsLeft counts the ordinary rounds still allowed; the compacting round is always the last.
    if (compact) this.compactions++;
    if (!slackLeft || compact) {
      this.roundsLeft = 0;
      this.compactNext = false;
    } else {
      this.roundsLeft--;
      if (freed < MIN_ROUND_FREED_BYTES || this.roundsLeft === 0) {
        this.roundsLeft = 1;
        this.compactNext = true;
      }
    }
    // Growth counts from where the rounds ended; rounds cut short by churn leave the old baseline,
    // so the next quiet period takes them up again.
    if (this.roundsLeft === 0) this.baselineBytes = this.committedBytes;
    this.collections++;
    this.lastPauseMs = pauseMs;
    this.maxPauseMs = Math.max(this.maxPauseMs, pauseMs);
    this.totalPauseMs = round2(this.totalPauseMs + pauseMs);
    this.logger?.info({ pauseMs, gcMs: this.lastGcMs, trimMs: this.lastTrimMs, committedBeforeMb: mb(before), committedAfterMb: mb(this.committedBytes), quietForMs: Math.round(this.quietForMs), roundsLeft: this.roundsLeft }, 'quiet: heap collected and trimmed');
  }
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function mb(bytes: number): number {
  return Math.round(bytes / 104_857.6) / 10;
}

/**
 * LOOM_QUIET_GC (read at the edge, `loom launch`): unset = the default quiet time, `off` = no
 * quiet GC, or the quiet time in seconds (1..3600).
 */
export function parseQuietGcSetting(value: string | undefined): { quietMs: number } | 'off' {
  if (value === undefined || value === '') return { quietMs: DEFAULT_QUIET_MS };
  if (value === 'off') return 'off';
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(seconds >= 1 && seconds <= 3600)) throw new LoomError('ERR_INVALID_ARGUMENT', `LOOM_QUIET_GC takes "off" or a quiet time in seconds, 1..3600 (got "${value}")`);
  return { quietMs: Math.round(seconds * 1000) };
}
