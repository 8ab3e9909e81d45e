import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionState, RouterStatus } from '../mesh/types.js';

const CONNECTION_STATES: readonly ConnectionState[] = ['connecting', 'pending', 'established', 'retrying', 'failed'];

export interface RouterMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** Prometheus text exposition, sampled from one fresh status snapshot. */
  render(): Promise<string>;
}

/**
 * Metrics are pulled from `status()` at scrape time, so the router needs no metric hooks and the
 * numbers always agree with `loom status`. Counters mirror the router's monotonic totals. Each
 * call makes its own Registry (several routers may share a process in tests).
 */
export function createRouterMetrics(status: () => RouterStatus, options: { defaultMetrics?: boolean } = {}): RouterMetrics {
  const registry = new Registry();
  let snapshot: RouterStatus | null = null;
  const current = (): RouterStatus => (snapshot ??= status());

  new Gauge({
    name: 'loom_connections',
    help: 'Connections to peers by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = new Map<ConnectionState, number>(CONNECTION_STATES.map((s) => [s, 0]));
      for (const c of current().connections) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Counter({
    name: 'loom_connection_terminations_total',
    help: 'Connections that ended since the router started',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(current().stats.terminations);
    },
  });
  new Counter({
    name: 'loom_gossip_bytes_total',
    help: 'Gossip payload bytes by direction',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      const s = current().stats;
      this.reset();
      this.inc({ direction: 'sent' }, s.gossipBytesSent);
      this.inc({ direction: 'received' }, s.gossipBytesReceived);
    },
  });
  new Counter({
    name: 'loom_gossip_messages_total',
    help: 'Gossip messages by direction',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      const s = current().stats;
      this.reset();
      this.inc({ direction: 'sent' }, s.gossipMessagesSent);
      this.inc({ direction: 'received' }, s.gossipMessagesReceived);
    },
  });
  new Gauge({
    name: 'loom_peers',
    help: 'Peers known in the mesh, including this one',
    registers: [registry],
    collect() {
      this.set(current().peers.length);
    },
  });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  return {
    registry,
    contentType: registry.contentType,
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
