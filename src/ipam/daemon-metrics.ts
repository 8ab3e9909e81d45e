import { Gauge, Registry } from 'prom-client';
import type { IpamStatus } from './status.js';

/**
 * `loom_ipam_*` metrics, pulled from one IpamStatus per scrape (so they agree with `loom status
 * ipam`). Its own Registry: several daemons may share a process in tests.
 */
export function createIpamMetrics(status: () => IpamStatus): { registry: Registry; render(): Promise<string> } {
  const registry = new Registry();
  let snapshot: IpamStatus | null = null;
  const current = (): IpamStatus => (snapshot ??= status());
  const self = (s: IpamStatus) => s.peers.find((p) => p.name === s.self);

  new Gauge({
    name: 'loom_ipam_addresses',
    help: 'Addresses of this peer: owned (its space in the ring), in_use (held by containers), free (owned, usable, not held), released (in their grace period)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const s = current();
      const me = self(s);
      this.set({ state: 'owned' }, me?.owned ?? 0);
      this.set({ state: 'in_use' }, s.allocations);
      this.set({ state: 'free' }, me?.free ?? 0);
      this.set({ state: 'released' }, s.releasedInGrace);
    },
  });
  new Gauge({
    name: 'loom_ipam_range_size',
    help: 'Addresses in the allocation range',
    registers: [registry],
    collect() {
      this.set(current().rangeSize);
    },
  });
  new Gauge({
    name: 'loom_ipam_ready',
    help: '1 once this peer has the address ring (bootstrap done), else 0',
    registers: [registry],
    collect() {
      this.set(current().state === 'ready' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'loom_ipam_owners',
    help: 'Peers owning space in the ring, by whether this peer reaches them',
    labelNames: ['reachable'],
    registers: [registry],
    collect() {
      const s = current();
      const unreachable = s.unreachableOwners.length;
      this.set({ reachable: 'true' }, s.peers.length - unreachable);
      this.set({ reachable: 'false' }, unreachable);
    },
  });
  new Gauge({
    name: 'loom_ipam_pending_allocations',
    help: 'Allocations waiting for the ring or a donation',
    registers: [registry],
    collect() {
      this.set(current().pendingAllocations);
    },
  });
  new Gauge({
    name: 'loom_ipam_range_mismatch_peers',
    help: 'Peers whose IPAM gossip was refused because they use another range',
    registers: [registry],
    collect() {
      this.set(current().rangeMismatches.reduce((n, m) => n + m.peers.length, 0));
    },
  });

  return {
    registry,
    async render() {
      snapshot = null;
      try {
        return await registry.metrics();
      } finally {
        snapshot = null;
      }
    },
  };
}
