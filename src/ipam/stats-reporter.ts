/**
 * Our free/in-use numbers in the ring, for donors to be chosen by and for status. They are
 * advisory, so a change is broadcast once per `statsDelayMs`, not per allocation.
 */
import type { TimerHandle } from '../core/clock.js';
import type { OwnNumbers } from './allocations.js';
import type { IpamContext } from './context.js';

export class StatsReporter {
  private timer: TimerHandle | null = null;

  constructor(
    private readonly context: IpamContext,
    private readonly ownNumbers: () => OwnNumbers,
  ) {}

  /** Puts our current numbers in the ring after the delay; broadcasts only if they changed. Idempotent. */
  schedule(): void {
    const { context } = this;
    if (this.timer || !context.running) return;
    this.timer = context.clock.setTimeout(() => {
      this.timer = null;
      if (!context.running || context.ring.isEmpty()) return;
      const { free, inUse } = this.ownNumbers();
      if (context.ring.setStats(context.self, free, inUse)) {
        context.saveRing();
        context.broadcastRing();
      }
    }, context.settings.statsDelayMs);
  }

  stop(): void {
    this.timer?.cancel();
  }
}
