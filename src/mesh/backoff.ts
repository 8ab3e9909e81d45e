/**
 * Reconnect delays: exponential with full jitter (AWS architecture blog, "Exponential Backoff
 * and Jitter"): attempt k waits uniform[minMs, min(capMs, baseMs * 2^k)].
 * Full jitter spreads the redials of many peers that lost the same neighbour at the same moment;
 * the small floor keeps an unlucky draw from turning into a tight redial loop.
 * Pure: the random source is injected, so tests and simulations are deterministic.
 */
import { LoomError } from '../core/errors.js';

export interface BackoffOptions {
  /** Ceiling of the first delay (default 1,000 ms). */
  baseMs?: number;
  /** Largest delay (default 60,000 ms: a peer that comes back is found within a minute). */
  capMs?: number;
  /** Smallest delay (default 100 ms). */
  minMs?: number;
  /** Uniform [0, 1); default Math.random. */
  random?: () => number;
}

export const DEFAULT_BACKOFF = { baseMs: 1_000, capMs: 60_000, minMs: 100 } as const;

export class Backoff {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly minMs: number;
  private readonly random: () => number;
  private failures = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
    this.capMs = options.capMs ?? DEFAULT_BACKOFF.capMs;
    this.minMs = options.minMs ?? DEFAULT_BACKOFF.minMs;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0 && this.capMs >= this.baseMs && this.minMs >= 0 && this.minMs <= this.baseMs)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'backoff needs 0 <= minMs <= baseMs <= capMs and baseMs > 0', {
        detail: { baseMs: this.baseMs, capMs: this.capMs, minMs: this.minMs },
      });
    }
  }

  /** Failures since the last success. */
  get attempts(): number {
    return this.failures;
  }

  /** Records a failure and returns how long to wait before the next attempt. */
  next(): number {
    // 2^30 already exceeds any sane cap; stop growing to avoid Infinity.
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.round(this.minMs + this.random() * Math.max(0, ceiling - this.minMs));
  }

  /** Call on success: the next failure starts again from baseMs. */
  reset(): void {
    this.failures = 0;
  }
}
