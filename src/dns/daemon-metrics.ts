import { createSnapshotMetrics, type MetricSpec, type SnapshotMetrics } from '../api/snapshot-metrics.js';
import type { DnsMetricsSnapshot } from './daemon-types.js';

export const DNS_METRICS: ReadonlyArray<MetricSpec<DnsMetricsSnapshot>> = [
  {
    name: 'loom_dns_records',
    help: 'DNS records held: live (answered), hidden (origin unreachable), tombstone (removed, kept for gossip)',
    kind: 'gauge',
    label: 'state',
    value: ({ report: { counts: c } }) => ({ live: c.live, hidden: c.hidden, tombstone: c.tombstones }),
  },
  { name: 'loom_dns_listeners', help: 'Addresses the DNS server listens on', kind: 'gauge', value: (s) => s.report.listeners.length },
  {
    name: 'loom_dns_queries_total',
    help: 'DNS messages received, by outcome: local (answered from the records), forwarded, malformed (error reply), dropped (no reply)',
    kind: 'counter',
    label: 'outcome',
    value: ({ report: { stats: s } }) => ({ local: s.answeredLocally, forwarded: s.forwarded, malformed: s.malformed, dropped: s.dropped }),
  },
  {
    name: 'loom_dns_responses_total',
    help: 'Notable DNS replies: nxdomain, servfail (no upstream answered), truncated (TC set)',
    kind: 'counter',
    label: 'kind',
    value: ({ report: { stats: s } }) => ({ nxdomain: s.nxdomain, servfail: s.servfail, truncated: s.truncated }),
  },
  {
    name: 'loom_dns_query_types_total',
    help: 'DNS questions answered locally or forwarded, by query type (A, AAAA, PTR, SRV, TXT, MX, CNAME, NS, SOA, ANY, other)',
    kind: 'counter',
    label: 'type',
    value: (s) => s.queryTypes,
  },
  {
    name: 'loom_dns_upstream_failures_total',
    help: 'Failed forwards: timeout, servfail or refused (per upstream resolver tried), busy (too many in flight), no_upstream (none configured)',
    kind: 'counter',
    label: 'reason',
    value: (s) => s.upstream.failures,
  },
  {
    name: 'loom_dns_upstream_duration_seconds',
    help: 'Time from forwarding a query upstream to the reply passed on to the client',
    kind: 'histogram',
    value: (s) => s.upstream.latency,
  },
];

/** `loom_dns_*` metrics, pulled from one snapshot per scrape (so they agree with `loom status dns`). */
export function createDnsMetrics(read: () => DnsMetricsSnapshot): SnapshotMetrics {
  return createSnapshotMetrics(read, DNS_METRICS);
}
