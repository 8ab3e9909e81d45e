import { Counter, Gauge, Registry } from 'prom-client';
import type { DnsReport } from './daemon-types.js';

/**
 * `loom_dns_*` metrics, pulled from one DnsReport per scrape (so they agree with `loom status
 * dns`). Its own Registry: several daemons may share a process in tests.
 */
export function createDnsMetrics(report: () => DnsReport): { registry: Registry; render(): Promise<string> } {
  const registry = new Registry();
  let snapshot: DnsReport | null = null;
  const current = (): DnsReport => (snapshot ??= report());

  new Gauge({
    name: 'loom_dns_records',
    help: 'DNS records held: live (answered), hidden (origin unreachable), tombstone (removed, kept for gossip)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const c = current().counts;
      this.set({ state: 'live' }, c.live);
      this.set({ state: 'hidden' }, c.hidden);
      this.set({ state: 'tombstone' }, c.tombstones);
    },
  });
  new Gauge({
    name: 'loom_dns_listeners',
    help: 'Addresses the DNS server listens on',
    registers: [registry],
    collect() {
      this.set(current().listeners.length);
    },
  });
  new Counter({
    name: 'loom_dns_queries_total',
    help: 'DNS messages received, by outcome: local (answered from the records), forwarded, malformed (error reply), dropped (no reply)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const s = current().stats;
      this.reset();
      this.inc({ outcome: 'local' }, s.answeredLocally);
      this.inc({ outcome: 'forwarded' }, s.forwarded);
      this.inc({ outcome: 'malformed' }, s.malformed);
      this.inc({ outcome: 'dropped' }, s.dropped);
    },
  });
  new Counter({
    name: 'loom_dns_responses_total',
    help: 'Notable DNS replies: nxdomain, servfail (no upstream answered), truncated (TC set)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const s = current().stats;
      this.reset();
      this.inc({ kind: 'nxdomain' }, s.nxdomain);
      this.inc({ kind: 'servfail' }, s.servfail);
      this.inc({ kind: 'truncated' }, s.truncated);
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
