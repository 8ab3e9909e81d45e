/**
 * `loom_dataplane_*`, `loom_peer_*` and `loom_relay_*` metrics, read at scrape time from one
 * snapshot of what the controller, the relay driver and the relay already count (the hot path
 * only increments the relay's counters; nothing here runs per packet). Per-peer series carry
 * the peer's name and nickname: bounded by the size of the mesh.
 */
import type { PeerName } from '../../core/ids.js';
import { createSnapshotMetrics, type MetricSpec, type Sample, type SnapshotMetrics } from '../../api/snapshot-metrics.js';
import type { RelayStats } from '../relay/stats.js';
import { DROP_REASONS } from '../relay/wire.js';
import type { PathKind, PeerPathStatus } from './desired.js';
import type { RelayNeighbourStatus } from './relay-driver.js';

export interface DataplaneMetricsSnapshot {
  /** One row per peer the data plane programs (controller status). */
  peers: readonly PeerPathStatus[];
  applies: number;
  /** The last apply failed (it is retried). */
  failing: boolean;
  /** The relay's counters and the driver's view of each neighbour; null when the relay is off. */
  relay: { stats: RelayStats; neighbours: readonly RelayNeighbourStatus[] } | null;
  nicknameOf: (peer: PeerName) => string | undefined;
}

const PATHS: readonly PathKind[] = ['fastdp', 'sleeve', 'unreachable'];

const peerLabels = (s: DataplaneMetricsSnapshot, peer: PeerName): Record<string, string> => ({ peer, nickname: s.nicknameOf(peer) ?? '' });

function pathCounts(s: DataplaneMetricsSnapshot): Sample[] {
  const counts = new Map<string, number>();
  for (const path of PATHS) for (const encrypted of ['true', 'false']) counts.set(`${path} ${encrypted}`, 0);
  for (const p of s.peers) counts.set(`${p.path} ${p.encrypted}`, (counts.get(`${p.path} ${p.encrypted}`) ?? 0) + 1);
  return [...counts].map(([key, value]) => {
    const [path = '', encrypted = ''] = key.split(' ');
    return { labels: { path, encrypted }, value };
  });
}

const relayCounter = (pick: (r: RelayStats) => Record<string, number>) => (s: DataplaneMetricsSnapshot): Record<string, number> => (s.relay ? pick(s.relay.stats) : {});

export const DATAPLANE_METRICS: ReadonlyArray<MetricSpec<DataplaneMetricsSnapshot>> = [
  {
    name: 'loom_dataplane_peers',
    help: 'Peers by data path (fastdp: kernel VXLAN; sleeve: the user-space relay; unreachable: no path) and whether their traffic is encrypted',
    kind: 'gauge',
    labels: ['path', 'encrypted'],
    value: pathCounts,
  },
  {
    name: 'loom_peer_path',
    help: 'The data path each peer uses now: 1 for its current path (fastdp, sleeve or unreachable)',
    kind: 'gauge',
    labels: ['peer', 'nickname', 'path'],
    value: (s) => s.peers.map((p) => ({ labels: { ...peerLabels(s, p.peer), path: p.path }, value: 1 })),
  },
  {
    name: 'loom_peer_rtt_seconds',
    help: "Round-trip time of the relay's last answered probe to each neighbour (direct connection)",
    kind: 'gauge',
    labels: ['peer', 'nickname'],
    value: (s) => (s.relay?.neighbours ?? []).flatMap((n) => (n.rttMs === null ? [] : [{ labels: peerLabels(s, n.peer), value: n.rttMs / 1000 }])),
  },
  {
    name: 'loom_peer_path_mtu_bytes',
    help: 'Path MTU to each neighbour (underlay IP packet bytes) as the relay uses it now',
    kind: 'gauge',
    labels: ['peer', 'nickname', 'verified'],
    value: (s) => (s.relay?.neighbours ?? []).flatMap((n) => (n.pmtu === null ? [] : [{ labels: { ...peerLabels(s, n.peer), verified: String(n.pmtuVerified) }, value: n.pmtu }])),
  },
  { name: 'loom_dataplane_applies_total', help: 'Successful applies of the desired data plane to the kernel', kind: 'counter', value: (s) => s.applies },
  { name: 'loom_dataplane_apply_failing', help: '1 while the last apply to the kernel failed (it is retried), else 0', kind: 'gauge', value: (s) => (s.failing ? 1 : 0) },
  {
    name: 'loom_relay_packets_total',
    help: 'Relay datagrams on the underlay: sent to neighbours (own, forwarded and probes) and received from them (before any check)',
    kind: 'counter',
    label: 'direction',
    value: relayCounter((r) => ({ sent: r.toNeighbours, received: r.fromNeighbours })),
  },
  {
    name: 'loom_relay_bytes_total',
    help: 'Relay datagram payload bytes on the underlay, by direction',
    kind: 'counter',
    label: 'direction',
    value: relayCounter((r) => ({ sent: r.bytesToNeighbours, received: r.bytesFromNeighbours })),
  },
  {
    name: 'loom_relay_frames_total',
    help: 'Frames between the relay and this host: from_host (read from the tap or the kernel VXLAN port), to_host (written into them)',
    kind: 'counter',
    label: 'direction',
    value: relayCounter((r) => ({ from_host: r.fromDevice + r.fromKernel, to_host: r.toDevice + r.toKernel })),
  },
  { name: 'loom_relay_forwarded_packets_total', help: 'Relay packets for another peer, passed on to the next hop', kind: 'counter', value: (s) => s.relay?.stats.forwarded ?? 0 },
  {
    name: 'loom_relay_drops_total',
    help: 'Packets the relay dropped, by reason (see DROP_REASONS in src/dataplane/relay/wire.ts)',
    kind: 'counter',
    label: 'reason',
    value: relayCounter((r) => Object.fromEntries(DROP_REASONS.map((reason) => [reason, r.drops[reason]]))),
  },
  {
    name: 'loom_relay_peer_packets_sent_total',
    help: 'Relay datagrams sent to each neighbour',
    kind: 'counter',
    labels: ['peer', 'nickname'],
    value: (s) => (s.relay?.stats.neighbours ?? []).map((n) => ({ labels: peerLabels(s, n.peer), value: n.sent })),
  },
];

/** The data plane's metrics over `read()`, taken once per scrape. */
export function createDataplaneMetrics(read: () => DataplaneMetricsSnapshot): SnapshotMetrics {
  return createSnapshotMetrics(read, DATAPLANE_METRICS);
}
