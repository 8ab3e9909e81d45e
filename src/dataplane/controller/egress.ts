/**
 * Keeps egress (forwarding + Loom's masquerade table, ../egress.ts) as the launch options say,
 * for the data plane subsystem. The wanted state never changes while the router runs, so it is
 * applied once at start; a failure (no nft binary, a kernel without NAT) is logged, shown in the
 * report, and retried with backoff (2 s doubling to 60 s) while the router runs; the containers'
 * overlay traffic does not depend on it.
 *
 * Stop leaves the table in place, as the bridge stays: containers keep reaching the outside while
 * the router restarts (Weave kept its NAT rules across restarts too), and the restarted router's
 * apply finds the table as wanted and changes nothing (no duplicate rules). `--no-masq` at the
 * next launch removes it; `remove()` is for a full teardown.
 */
import type { Clock, TimerHandle } from '../../core/clock.js';
import { toLoomError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { EgressOp, EgressSpec } from '../egress.js';

const FIRST_RETRY_MS = 2_000;
const MAX_RETRY_MS = 60_000;

/** What the controller needs of the OS side (LinuxEgress; a fake in tests). */
export interface EgressApplier {
  apply(spec: EgressSpec): Promise<EgressOp[]>;
  remove(): Promise<EgressOp[]>;
}

/** The `egress` part of the data plane's report. */
export interface EgressStatus {
  range: string;
  masquerade: boolean;
  /** True once forwarding and the table are as wanted. */
  applied: boolean;
  attempts: number;
  lastError: string | null;
}

export class EgressController {
  private readonly applier: EgressApplier;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly spec: EgressSpec;
  private applied = false;
  private attempts = 0;
  private lastError: string | null = null;
  private retryMs = FIRST_RETRY_MS;
  private timer: TimerHandle | null = null;
  private running = false;

  constructor(components: { applier: EgressApplier; clock: Clock; logger: Logger }, spec: EgressSpec) {
    this.applier = components.applier;
    this.clock = components.clock;
    this.logger = components.logger;
    this.spec = spec;
  }

  /** Applies once and waits for it (never throws); on failure retries in the background. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.attempt();
  }

  /** Stops retrying; leaves forwarding and the table as they are (see the header). Idempotent. */
  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
  }

  /** Deletes Loom's table (a full teardown). */
  remove(): Promise<EgressOp[]> {
    this.applied = false;
    return this.applier.remove();
  }

  status(): EgressStatus {
    return { range: this.spec.range, masquerade: this.spec.masquerade, applied: this.applied, attempts: this.attempts, lastError: this.lastError };
  }

  private async attempt(): Promise<void> {
    this.timer = null;
    if (!this.running) return;
    this.attempts++;
    try {
      await this.applier.apply(this.spec);
      this.applied = true;
      this.lastError = null;
    } catch (err) {
      const e = toLoomError(err);
      this.lastError = `${e.code}: ${e.message}`;
      if (!this.running) return;
      this.logger.warn({ code: e.code, err: e.message, retryMs: this.retryMs }, 'egress (forwarding, masquerade) not applied; retrying');
      this.timer = this.clock.setTimeout(() => void this.attempt(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    }
  }
}
