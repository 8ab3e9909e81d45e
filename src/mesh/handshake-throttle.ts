/**
 * Throttling of inbound handshakes per source address (issue 12: "a peer with a wrong password
 * is throttled (backoff), and so is a flood of handshakes"). Two rules per source IP:
 *
 * - **Rate**: a token bucket of handshake starts (`burst` at once, `perSecond` refilled). A flood
 *   of connections from one address is refused at accept, before any key is generated.
 * - **Backoff after failures**: a handshake that fails in a way a real peer with our password
 *   never causes (wrong or missing password, garbage, another protocol version, a handshake left
 *   unfinished) counts against its address. After `freeFailures` in a row, the address is refused
 *   for `baseMs * 2^(k - freeFailures)` (k the failures so far), at most `capMs`. A handshake that
 *   succeeds from the address clears its record.
 *
 * Refused means the stream is closed at once: nothing is read, nothing is sent, no crypto runs.
 * Our own dials are not throttled here (the connection maker's backoff spaces them).
 *
 * Bounded memory: at most `maxSources` addresses are remembered; the least recently seen is
 * forgotten first (a Map keeps insertion order; a touched entry is moved to the end). Forgetting
 * an address only ever makes the throttle more lenient to it.
 *
 * What it cannot tell apart: peers behind one NAT share an address, so a wrong-password peer
 * there delays the others' *new* connections by at most `capMs` (established ones are not
 * touched). Pure over the `now` it is given (tests need no timers).
 */
import { LoomError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';

export interface HandshakeThrottleOptions {
  /** Handshakes one address may start at once (default 20). */
  burst?: number;
  /** Refill rate of that allowance (default 5 per second). */
  perSecond?: number;
  /** Failed handshakes in a row allowed before the backoff starts (default 3). */
  freeFailures?: number;
  /** First refusal period (default 1,000 ms); doubles with each further failure. */
  baseMs?: number;
  /** Longest refusal period (default 30,000 ms). */
  capMs?: number;
  /** Addresses remembered at most (default 4,096). */
  maxSources?: number;
}

export const DEFAULT_HANDSHAKE_THROTTLE = { burst: 20, perSecond: 5, freeFailures: 3, baseMs: 1_000, capMs: 30_000, maxSources: 4_096 } as const;

/** Handshake failures that count against the source: none of them happens between two peers that share our password and protocol. */
const COUNTED_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['ERR_AUTH_FAILED', 'ERR_PROTOCOL', 'ERR_VERSION_MISMATCH', 'ERR_FRAME_TOO_LARGE', 'ERR_HANDSHAKE_TIMEOUT']);

export type ThrottleVerdict = 'admit' | 'rate' | 'backoff';

interface SourceRecord {
  tokens: number;
  refilledAt: number;
  failures: number;
  blockedUntil: number;
}

export interface HandshakeThrottleStats {
  /** Inbound connections closed at accept by the rate rule. */
  rateLimited: number;
  /** Inbound connections closed at accept because their address was backing off. */
  backedOff: number;
  /** Inbound handshakes that failed in a counted way. */
  failures: number;
  /** Addresses remembered now. */
  sources: number;
}

/** The IP of "ip:port" or "[v6]:port" (an address without a port is returned as it is). */
export function sourceOf(remoteAddress: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(remoteAddress) ?? /^([^:]+):\d+$/.exec(remoteAddress);
  return m?.[1] ?? remoteAddress;
}

export class HandshakeThrottle {
  private readonly burst: number;
  private readonly perMs: number;
  private readonly freeFailures: number;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly maxSources: number;
  private readonly sources = new Map<string, SourceRecord>();
  private rateLimited = 0;
  private backedOff = 0;
  private failures = 0;

  constructor(options: HandshakeThrottleOptions = {}) {
    const o = { ...DEFAULT_HANDSHAKE_THROTTLE, ...options };
    const positive = (v: number): boolean => Number.isFinite(v) && v > 0;
    if (!positive(o.burst) || !positive(o.perSecond) || !positive(o.baseMs) || !(o.capMs >= o.baseMs) || !(Number.isInteger(o.freeFailures) && o.freeFailures >= 0) || !(Number.isInteger(o.maxSources) && o.maxSources >= 1)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'handshake throttle needs burst, perSecond, baseMs > 0, capMs >= baseMs, freeFailures >= 0, maxSources >= 1', { detail: { ...o } });
    }
    this.burst = o.burst;
    this.perMs = o.perSecond / 1000;
    this.freeFailures = o.freeFailures;
    this.baseMs = o.baseMs;
    this.capMs = o.capMs;
    this.maxSources = o.maxSources;
  }

  /** May a handshake from `remoteAddress` start now? Takes a token when it may. */
  admit(remoteAddress: string, now: number): ThrottleVerdict {
    const r = this.touch(sourceOf(remoteAddress), now);
    if (now < r.blockedUntil) {
      this.backedOff++;
      return 'backoff';
    }
    r.tokens = Math.min(this.burst, r.tokens + (now - r.refilledAt) * this.perMs);
    r.refilledAt = now;
    if (r.tokens < 1) {
      this.rateLimited++;
      return 'rate';
    }
    r.tokens -= 1;
    return 'admit';
  }

  /**
   * An inbound handshake from `remoteAddress` failed with `code`. Returns how long the address is
   * now refused (0: not refused, or a failure that does not count).
   */
  failed(remoteAddress: string, code: ErrorCode, now: number): number {
    if (!COUNTED_FAILURES.has(code)) return 0;
    this.failures++;
    const r = this.touch(sourceOf(remoteAddress), now);
    r.failures++;
    const over = r.failures - this.freeFailures;
    if (over <= 0) return 0;
    const ms = Math.min(this.capMs, this.baseMs * 2 ** Math.min(over - 1, 30));
    r.blockedUntil = now + ms;
    return ms;
  }

  /** A handshake from `remoteAddress` succeeded: its failures are forgotten. */
  succeeded(remoteAddress: string): void {
    const r = this.sources.get(sourceOf(remoteAddress));
    if (r === undefined) return;
    r.failures = 0;
    r.blockedUntil = 0;
  }

  stats(): HandshakeThrottleStats {
    return { rateLimited: this.rateLimited, backedOff: this.backedOff, failures: this.failures, sources: this.sources.size };
  }

  /** The record of `source`, created full, moved to the most recently seen end; evicts the oldest beyond the bound. */
  private touch(source: string, now: number): SourceRecord {
    let r = this.sources.get(source);
    if (r === undefined) {
      r = { tokens: this.burst, refilledAt: now, failures: 0, blockedUntil: 0 };
    } else {
      this.sources.delete(source);
    }
    this.sources.set(source, r);
    if (this.sources.size > this.maxSources) {
      const oldest = this.sources.keys().next();
      if (oldest.done !== true) this.sources.delete(oldest.value);
    }
    return r;
  }
}
