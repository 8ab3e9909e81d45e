/**
 * Every metrics source the daemon registers (router, data plane, IPAM, DNS, the quiet GC's memory), each over a fixed,
 * realistic snapshot: what the catalogue tests (promtool, docs/API.md, the Grafana dashboard)
 * check as "the metrics Loom exports". A source added to the daemon belongs here too.
 */
import { createRouterMetrics } from '../../../src/api/metrics.js';
import type { SnapshotMetrics } from '../../../src/api/snapshot-metrics.js';
import { LatencyHistogram } from '../../../src/core/histogram.js';
import { createDataplaneMetrics, type DataplaneMetricsSnapshot } from '../../../src/dataplane/controller/metrics.js';
import { zeroCounters, zeroDrops, type RelayStats } from '../../../src/dataplane/relay/stats.js';
import { createDnsMetrics } from '../../../src/dns/daemon-metrics.js';
import type { DnsMetricsSnapshot } from '../../../src/dns/daemon-types.js';
import { queryTypeRecord } from '../../../src/dns/query-types.js';
import { QUIET_GC_METRICS } from '../../../src/daemon/process-gc.js';
import { createSnapshotMetrics as snapshotMetrics } from '../../../src/api/snapshot-metrics.js';
import { createIpamMetrics } from '../../../src/ipam/daemon-metrics.js';
import type { IpamStatus } from '../../../src/ipam/status.js';
import { HOST1, HOST2, HOST3, sampleStatus } from './fake-router.js';

export function sampleRelayStats(): RelayStats {
  const drops = zeroDrops();
  drops['auth-failed'] = 3;
  drops['no-route'] = 1;
  return {
    ...zeroCounters(),
    fromDevice: 900,
    bytesFromDevice: 1_200_000,
    toDevice: 850,
    toNeighbours: 1000,
    bytesToNeighbours: 1_400_000,
    fromNeighbours: 950,
    bytesFromNeighbours: 1_300_000,
    forwarded: 40,
    coalescedSegments: 0,
    drops,
    neighbours: [
      { peer: HOST2, address: '192.168.1.2:6783', authenticated: true, sent: 600, bytesSent: 0, bytesReceived: 0, pmtu: 1500, pmtuVerified: true },
      { peer: HOST3, address: '192.168.1.3:6783', authenticated: true, sent: 400, bytesSent: 0, bytesReceived: 0, pmtu: 1400, pmtuVerified: false },
    ],
    gso: true,
  };
}

export function sampleDataplaneSnapshot(): DataplaneMetricsSnapshot {
  const nicknames = new Map([[HOST2, 'host2'], [HOST3, 'host3']]);
  return {
    peers: [
      { peer: HOST2, path: 'fastdp', encrypted: false, mtu: 1450, underlayIp: '192.168.1.2', macs: 2 },
      { peer: HOST3, path: 'sleeve', encrypted: false, mtu: 1422, underlayIp: '192.168.1.3', reason: 'UDP to the peer is blocked', macs: 1 },
    ],
    applies: 12,
    failing: false,
    relay: {
      stats: sampleRelayStats(),
      neighbours: [
        { peer: HOST2, address: '192.168.1.2:6783', direct: true, open: true, rttMs: 0.8, pmtu: 1500, pmtuVerified: true },
        { peer: HOST3, address: '192.168.1.3:6783', direct: true, open: false, rttMs: 1.5, pmtu: 1400, pmtuVerified: false },
      ],
    },
    nicknameOf: (peer) => nicknames.get(peer),
  };
}

export function sampleIpamStatus(): IpamStatus {
  return {
    self: HOST1,
    range: '10.32.0.0/12',
    defaultSubnet: '10.32.0.0/12',
    mode: 'consensus',
    state: 'ready',
    rangeSize: 1 << 20,
    peers: [
      { name: HOST1, nickname: 'host1', owned: 524_288, inUse: 3, free: 524_285, reachable: true },
      { name: HOST2, nickname: 'host2', owned: 524_288, inUse: 1, free: 524_287, reachable: false },
    ],
    unreachableOwners: [HOST2],
    allocations: 3,
    releasedInGrace: 1,
    pendingAllocations: 2,
    rangeMismatches: [],
  };
}

export function sampleDnsSnapshot(): DnsMetricsSnapshot {
  const latency = new LatencyHistogram();
  for (const s of [0.0004, 0.003, 0.02, 3]) latency.observe(s);
  return {
    report: {
      domain: 'loom.local.',
      ttlSeconds: 1,
      resolvConf: '/etc/resolv.conf',
      listeners: [{ address: '10.32.0.1', udp: '10.32.0.1:53', tcp: '10.32.0.1:53', udpPath: 'batched' }],
      records: [],
      counts: { live: 4, hidden: 1, tombstones: 2 },
      stats: { queries: 20, answeredLocally: 12, forwarded: 6, nxdomain: 2, servfail: 1, malformed: 1, dropped: 1, truncated: 0 },
    },
    queryTypes: queryTypeRecord([10, 4, 2, 0, 0, 0, 0, 0, 0, 0, 2]),
    upstream: { failures: { timeout: 2, servfail: 1, refused: 0, busy: 0, no_upstream: 0 }, latency: latency.snapshot() },
  };
}

/** One source per registered name, as the daemon registers them (process metrics included with the router's). */
export function allMetricSources(): Array<[string, SnapshotMetrics]> {
  return [
    ['router', createRouterMetrics(() => sampleStatus(), { defaultMetrics: true })],
    ['dataplane', createDataplaneMetrics(() => sampleDataplaneSnapshot())],
    ['ipam', createIpamMetrics(() => sampleIpamStatus())],
    ['dns', createDnsMetrics(() => sampleDnsSnapshot())],
    ['memory', snapshotMetrics(() => ({ quietMs: 20_000, quietForMs: 31_000, settled: true, collections: 2, compactions: 1, lastPauseMs: 14.2, lastGcMs: 13.1, lastTrimMs: 1.1, maxPauseMs: 17.5, totalPauseMs: 31.7, baselineBytes: 17e6, committedBytes: 17e6 }), QUIET_GC_METRICS)],
  ];
}

/** The whole /metrics text, as ApiServer.renderMetrics joins the sources. */
export async function renderAllMetrics(): Promise<string> {
  const parts: string[] = [];
  for (const [, source] of allMetricSources()) parts.push(await source.render());
  return parts.map((p) => (p.endsWith('\n') ? p : p + '\n')).join('');
}

/** Metric families in an exposition: name -> type (from the `# TYPE` lines). */
export function familiesOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}
