/**
 * `allocate` calls that wait: for the ring (bootstrap) or for space (a donation). One entry per
 * container id and subnet; every caller asking for the same one waits on it.
 *
 * Contract: each waiter is settled exactly once: with the address once `retry` finds one, or
 * with ERR_UNAVAILABLE (no ring yet) / ERR_EXHAUSTED (no space) after `allocateTimeoutMs`, when
 * no reachable peer has space left (`failSubnet`), or at stop.
 */
import type { TimerHandle } from '../core/clock.js';
import { LoomError } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import { type Cidr, cidrEquals, formatCidr } from './cidr.js';
import type { AllocationTable } from './allocations.js';
import type { IpamContext } from './context.js';
import type { Donations } from './donations.js';
import type { AllocationResult } from './status.js';

export interface Waiter {
  resolve: (r: AllocationResult) => void;
  reject: (e: LoomError) => void;
}

interface PendingAllocation {
  key: string;
  containerId: ContainerId;
  subnet: Cidr;
  waiters: Waiter[];
  deadline: TimerHandle;
}

export class AllocationWaiters {
  private readonly pending = new Map<string, PendingAllocation>();

  constructor(
    private readonly context: IpamContext,
    private readonly allocations: AllocationTable,
    private readonly donations: Donations,
    /** For the ERR_UNAVAILABLE message at the deadline. */
    private readonly stateText: () => string,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Adds a waiter for `key` (`keyOf(id, subnet)`); asks for a donation if the ring exists. */
  enqueue(key: string, id: ContainerId, subnet: Cidr, waiter: Waiter): void {
    const { context } = this;
    const existing = this.pending.get(key);
    if (existing) {
      existing.waiters.push(waiter);
      return;
    }
    const p: PendingAllocation = {
      key,
      containerId: id,
      subnet,
      waiters: [waiter],
      deadline: context.clock.setTimeout(() => {
        const code = context.ring.isEmpty() ? 'ERR_UNAVAILABLE' : 'ERR_EXHAUSTED';
        this.fail(p, new LoomError(code, code === 'ERR_UNAVAILABLE' ? `IPAM is not ready (${this.stateText()})` : `no free address in ${formatCidr(subnet)}`));
      }, context.settings.allocateTimeoutMs),
    };
    this.pending.set(key, p);
    if (!context.ring.isEmpty()) this.donations.request(subnet);
  }

  /** After the ring changed: allocates what it can, asks for donations for the rest. */
  retry(): void {
    if (this.context.ring.isEmpty()) return;
    for (const p of [...this.pending.values()]) {
      const done = this.allocations.allocateFree(p.containerId, p.subnet);
      if (!done) {
        this.donations.request(p.subnet);
        continue;
      }
      p.deadline.cancel();
      this.pending.delete(p.key);
      for (const w of p.waiters) w.resolve(done);
    }
    this.donations.retainOnly((subnet) => [...this.pending.values()].some((p) => cidrEquals(p.subnet, subnet)));
  }

  /** Fails every wait for `subnet` (no reachable peer has space there), each with its own error. */
  failSubnet(subnet: Cidr, error: () => LoomError): void {
    for (const p of [...this.pending.values()]) {
      if (cidrEquals(p.subnet, subnet)) this.fail(p, error());
    }
  }

  failAll(err: LoomError): void {
    for (const p of [...this.pending.values()]) this.fail(p, err);
  }

  private fail(p: PendingAllocation, err: LoomError): void {
    p.deadline.cancel();
    this.pending.delete(p.key);
    for (const w of p.waiters) w.reject(err);
  }
}
