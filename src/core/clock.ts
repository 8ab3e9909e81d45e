/**
 * Time behind an interface so that protocol timers (heartbeats, backoff, gossip intervals,
 * handshake timeouts) run on a fake clock in simulations and tests.
 */
export interface TimerHandle {
  /** Stops the timer; calling it twice is harmless. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since an arbitrary epoch; monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref?.();
    return { cancel: () => clearInterval(t) };
  },
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
  every: number | null;
  cancelled: boolean;
}

/**
 * Deterministic clock: nothing fires until `advance`/`runUntilIdle` is called.
 * Timers due at the same instant fire in the order they were scheduled.
 */
export class FakeClock implements Clock {
  private current = 0;
  private nextId = 0;
  private timers: FakeTimer[] = [];

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.schedule(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.schedule(fn, ms, Math.max(1, ms));
  }

  /** Number of timers still pending. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Time of the next pending timer, or null. */
  nextAt(): number | null {
    let best: number | null = null;
    for (const t of this.timers) if (!t.cancelled && (best === null || t.at < best)) best = t.at;
    return best;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const t = this.popDue(target);
      if (!t) break;
      this.current = t.at;
      this.fire(t);
    }
    this.current = target;
  }

  /** Fires timers one by one (jumping time) until `until` returns true or `limitMs` passes. */
  runUntil(until: () => boolean, limitMs: number): boolean {
    const end = this.current + limitMs;
    while (!until()) {
      const t = this.popDue(end);
      if (!t) {
        this.current = end;
        return until();
      }
      this.current = t.at;
      this.fire(t);
    }
    return true;
  }

  private schedule(fn: () => void, ms: number, every: number | null): TimerHandle {
    const timer: FakeTimer = { id: this.nextId++, at: this.current + Math.max(0, ms), fn, every, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  private popDue(limit: number): FakeTimer | null {
    let bestIdx = -1;
    let best: FakeTimer | undefined;
    this.timers = this.timers.filter((t) => !t.cancelled);
    for (let i = 0; i < this.timers.length; i++) {
      const t = this.timers[i]!;
      if (t.at <= limit && (!best || t.at < best.at || (t.at === best.at && t.id < best.id))) {
        best = t;
        bestIdx = i;
      }
    }
    if (!best) return null;
    if (best.every === null) this.timers.splice(bestIdx, 1);
    return best;
  }

  private fire(t: FakeTimer): void {
    if (t.every !== null) {
      t.at += t.every;
      t.id = this.nextId++;
    }
    t.fn();
  }
}
