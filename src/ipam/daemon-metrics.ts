import { createSnapshotMetrics, type MetricSpec, type SnapshotMetrics } from '../api/snapshot-metrics.js';
import type { IpamStatus } from './status.js';

const selfOf = (s: IpamStatus) => s.peers.find((p) => p.name === s.self);

export const IPAM_METRICS: ReadonlyArray<MetricSpec<IpamStatus>> = [
  {
    name: 'loom_ipam_addresses',
    help: 'Addresses of this peer: owned (its space in the ring), in_use (held by containers), free (owned, usable, not held), released (in their grace period)',
    kind: 'gauge',
    label: 'state',
    value: (s) => ({ owned: selfOf(s)?.owned ?? 0, in_use: s.allocations, free: selfOf(s)?.free ?? 0, released: s.releasedInGrace }),
  },
  { name: 'loom_ipam_range_size', help: 'Addresses in the allocation range', kind: 'gauge', value: (s) => s.rangeSize },
  { name: 'loom_ipam_ready', help: '1 once this peer has the address ring (bootstrap done), else 0', kind: 'gauge', value: (s) => (s.state === 'ready' ? 1 : 0) },
  {
    name: 'loom_ipam_owners',
    help: 'Peers owning space in the ring, by whether this peer reaches them',
    kind: 'gauge',
    label: 'reachable',
    value: (s) => ({ true: s.peers.length - s.unreachableOwners.length, false: s.unreachableOwners.length }),
  },
  { name: 'loom_ipam_pending_allocations', help: 'Allocations waiting for the ring or a donation', kind: 'gauge', value: (s) => s.pendingAllocations },
  {
    name: 'loom_ipam_range_mismatch_peers',
    help: 'Peers whose IPAM gossip was refused because they use another range',
    kind: 'gauge',
    value: (s) => s.rangeMismatches.reduce((n, m) => n + m.peers.length, 0),
  },
];

/** `loom_ipam_*` metrics, pulled from one IpamStatus per scrape (so they agree with `loom status ipam`). */
export function createIpamMetrics(status: () => IpamStatus): SnapshotMetrics {
  return createSnapshotMetrics(status, IPAM_METRICS);
}
