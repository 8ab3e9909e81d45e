import { Registry, collectDefaultMetrics } from 'prom-client';
import { createSnapshotMetrics, type MetricSpec, type SnapshotMetrics } from './snapshot-metrics.js';
import type { ConnectionState, RouterStatus } from '../mesh/types.js';

const CONNECTION_STATES: readonly ConnectionState[] = ['connecting', 'pending', 'established', 'retrying', 'failed'];

export type RouterMetrics = SnapshotMetrics;

/**
 * How often the event-loop delay histogram behind nodejs_eventloop_lag_* samples (a libuv timer).
 * prom-client's default, 10 ms, wakes an idle router 100 times a second: 0.65 % of a core on
 * this kind of machine by itself, most of the 1 % idle budget (issue 14). At 500 ms it costs
 * ~0.02 %; a turn that blocks the loop for longer than that is still caught, shorter ones
 * are sampled (a turn of d ms is caught with probability about d/500).
 */
export const EVENT_LOOP_SAMPLE_MS = 500;

export const ROUTER_METRICS: ReadonlyArray<MetricSpec<RouterStatus>> = [
  {
    name: 'loom_connections',
    help: 'Connections to peers by state and whether they are encrypted (every state is listed, 0 when none)',
    kind: 'gauge',
    labels: ['state', 'encrypted'],
    value: (s) => {
      // Before the handshake a connection's encryption is the mesh's (a password or none).
      const counts = new Map<string, number>(CONNECTION_STATES.map((state) => [`${state} ${s.encryption}`, 0]));
      for (const c of s.connections) {
        const key = `${c.state} ${c.encrypted ?? s.encryption}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return [...counts].map(([key, value]) => {
        const [state = '', encrypted = ''] = key.split(' ');
        return { labels: { state, encrypted }, value };
      });
    },
  },
  { name: 'loom_connection_terminations_total', help: 'Connections that ended since the router started', kind: 'counter', value: (s) => s.stats.terminations },
  { name: 'loom_handshakes_failed_total', help: 'Inbound handshakes that failed: wrong or missing password, garbage, another protocol version, not finished in time', kind: 'counter', value: (s) => s.stats.handshakesFailed },
  { name: 'loom_handshakes_throttled_total', help: 'Inbound connections closed at accept by the handshake throttle (a flood from one address, or an address backing off after failed handshakes)', kind: 'counter', value: (s) => s.stats.handshakesThrottled },
  {
    name: 'loom_gossip_bytes_total',
    help: 'Gossip payload bytes by direction',
    kind: 'counter',
    label: 'direction',
    value: (s) => ({ sent: s.stats.gossipBytesSent, received: s.stats.gossipBytesReceived }),
  },
  {
    name: 'loom_gossip_messages_total',
    help: 'Gossip messages by direction',
    kind: 'counter',
    label: 'direction',
    value: (s) => ({ sent: s.stats.gossipMessagesSent, received: s.stats.gossipMessagesReceived }),
  },
  { name: 'loom_peers', help: 'Peers known in the mesh, including this one', kind: 'gauge', value: (s) => s.peers.length },
];

/**
 * Metrics are pulled from `status()` at scrape time, so the router needs no metric hooks and the
 * numbers always agree with `loom status`. Counters mirror the router's monotonic totals. Each
 * call makes its own Registry (several routers may share a process in tests).
 */
export function createRouterMetrics(status: () => RouterStatus, options: { defaultMetrics?: boolean } = {}): RouterMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  return createSnapshotMetrics(status, ROUTER_METRICS, registry);
}
