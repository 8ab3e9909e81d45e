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
  /** Scheduling order: ties at one instant fire first-scheduled first. */
  seq: number;
  at: number;
  fn: () => void;
  every: number | null;
  cancelled: boolean;
}

function before(a: FakeTimer, b: FakeTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * Deterministic clock: nothing fires until `advance`/`runUntil` is called.
 * Timers due at the same instant fire in the order they were scheduled. Pending timers sit in a
 * binary heap (simulations of 1,000 routers keep tens of thousands of timers); a cancelled timer
 * stays in the heap, marked, until it reaches the top.
 */
export class FakeClock implements Clock {
  private current = 0;
  private nextSeq = 0;
  private live = 0;
  private readonly heap: FakeTimer[] = [];

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
    return this.live;
  }

  /** Time of the next pending timer, or null. */
  nextAt(): number | null {
    return this.peek()?.at ?? null;
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
    const timer: FakeTimer = { seq: this.nextSeq++, at: this.current + Math.max(0, ms), fn, every, cancelled: false };
    this.push(timer);
    this.live++;
    return {
      cancel: () => {
        if (timer.cancelled) return;
        timer.cancelled = true;
        this.live--;
      },
    };
  }

  /** The earliest live timer, dropping cancelled ones from the top. */
  private peek(): FakeTimer | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0];
  }

  private popDue(limit: number): FakeTimer | null {
    const top = this.peek();
    if (!top || top.at > limit) return null;
    this.pop();
    if (top.every === null) {
      // Fired: a later cancel() of its handle is a no-op.
      top.cancelled = true;
      this.live--;
    }
    return top;
  }

  private fire(t: FakeTimer): void {
    if (t.every !== null) {
      // Re-armed before running, so an interval that cancels itself from its callback stays cancelled.
      t.at += t.every;
      t.seq = this.nextSeq++;
      this.push(t);
    }
    t.fn();
  }

  private push(t: FakeTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (h.length === 0 || !last) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
