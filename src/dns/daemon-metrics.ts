import { createSnapshotMetrics, type MetricSpec, type SnapshotMetrics } from '../api/snapshot-metrics.js';
import type { DnsReport } from './daemon-types.js';

const DNS_METRICS: ReadonlyArray<MetricSpec<DnsReport>> = [
  {
    name: 'loom_dns_records',
    help: 'DNS records held: live (answered), hidden (origin unreachable), tombstone (removed, kept for gossip)',
    kind: 'gauge',
    label: 'state',
    value: ({ counts: c }) => ({ live: c.live, hidden: c.hidden, tombstone: c.tombstones }),
  },
  { name: 'loom_dns_listeners', help: 'Addresses the DNS server listens on', kind: 'gauge', value: (r) => r.listeners.length },
  {
    name: 'loom_dns_queries_total',
    help: 'DNS messages received, by outcome: local (answered from the records), forwarded, malformed (error reply), dropped (no reply)',
    kind: 'counter',
    label: 'outcome',
    value: ({ stats: s }) => ({ local: s.answeredLocally, forwarded: s.forwarded, malformed: s.malformed, dropped: s.dropped }),
  },
  {
    name: 'loom_dns_responses_total',
    help: 'Notable DNS replies: nxdomain, servfail (no upstream answered), truncated (TC set)',
    kind: 'counter',
    label: 'kind',
    value: ({ stats: s }) => ({ nxdomain: s.nxdomain, servfail: s.servfail, truncated: s.truncated }),
  },
];

/** `loom_dns_*` metrics, pulled from one DnsReport per scrape (so they agree with `loom status dns`). */
export function createDnsMetrics(report: () => DnsReport): SnapshotMetrics {
  return createSnapshotMetrics(report, DNS_METRICS);
}
