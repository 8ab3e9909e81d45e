import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDataplaneMetrics, type DataplaneMetricsSnapshot } from '../../../src/dataplane/controller/metrics.js';
import { createDnsMetrics } from '../../../src/dns/daemon-metrics.js';
import { HOST2, HOST3 } from '../api/fake-router.js';
import { sampleDataplaneSnapshot, sampleDnsSnapshot } from '../api/metric-sources.js';

const h2 = `peer="${HOST2}",nickname="host2"`;
const h3 = `peer="${HOST3}",nickname="host3"`;

test('data plane metrics: paths, per-peer RTT (seconds) and path MTU, relay counters and drops by reason', async () => {
  const text = await createDataplaneMetrics(() => sampleDataplaneSnapshot()).render();
  assert.match(text, /^loom_dataplane_peers\{path="fastdp",encrypted="false"\} 1$/m);
  assert.match(text, /^loom_dataplane_peers\{path="sleeve",encrypted="false"\} 1$/m);
  assert.match(text, /^loom_dataplane_peers\{path="unreachable",encrypted="true"\} 0$/m);
  assert.ok(text.includes(`loom_peer_path{${h2},path="fastdp"} 1\n`), text);
  assert.ok(text.includes(`loom_peer_path{${h3},path="sleeve"} 1\n`));
  assert.ok(text.includes(`loom_peer_rtt_seconds{${h2}} 0.0008\n`));
  assert.ok(text.includes(`loom_peer_rtt_seconds{${h3}} 0.0015\n`));
  assert.ok(text.includes(`loom_peer_path_mtu_bytes{${h2},verified="true"} 1500\n`));
  assert.ok(text.includes(`loom_peer_path_mtu_bytes{${h3},verified="false"} 1400\n`));
  assert.match(text, /^# TYPE loom_relay_bytes_total counter$/m);
  assert.match(text, /^loom_relay_bytes_total\{direction="sent"\} 1400000$/m);
  assert.match(text, /^loom_relay_packets_total\{direction="received"\} 950$/m);
  assert.match(text, /^loom_relay_frames_total\{direction="from_host"\} 900$/m);
  assert.match(text, /^loom_relay_forwarded_packets_total 40$/m);
  assert.match(text, /^loom_relay_drops_total\{reason="auth-failed"\} 3$/m);
  assert.match(text, /^loom_relay_drops_total\{reason="replayed"\} 0$/m, 'every reason is listed');
  assert.ok(text.includes(`loom_relay_peer_packets_sent_total{${h2}} 600\n`));
  assert.match(text, /^loom_dataplane_applies_total 12$/m);
  assert.match(text, /^loom_dataplane_apply_failing 0$/m);
});

test('data plane metrics follow the snapshot: a gone peer leaves, an unanswered probe has no RTT, no relay no relay series', async () => {
  let snapshot: DataplaneMetricsSnapshot = sampleDataplaneSnapshot();
  const metrics = createDataplaneMetrics(() => snapshot);
  assert.ok((await metrics.render()).includes(`loom_peer_rtt_seconds{${h3}}`));
  const relay = snapshot.relay!;
  snapshot = {
    ...snapshot,
    peers: snapshot.peers.filter((p) => p.peer !== HOST3),
    failing: true,
    relay: { stats: { ...relay.stats, neighbours: relay.stats.neighbours.filter((n) => n.peer !== HOST3) }, neighbours: [{ ...relay.neighbours[0]!, rttMs: null }] },
  };
  let text = await metrics.render();
  assert.ok(!text.includes(HOST3), 'no series of the gone peer');
  assert.ok(!text.includes('loom_peer_rtt_seconds{'), 'no RTT without an answered probe');
  assert.match(text, /^loom_dataplane_apply_failing 1$/m);
  snapshot = { ...snapshot, relay: null };
  text = await metrics.render();
  assert.doesNotMatch(text, /^loom_relay_\w+\{/m, 'no labelled relay series');
  assert.match(text, /^loom_relay_forwarded_packets_total 0$/m, 'an unlabelled one stays at 0 (prom-client always exposes those)');
  assert.match(text, /^# TYPE loom_relay_drops_total counter$/m, 'the family is still declared');
});

test('DNS upstream latency is a Prometheus histogram built from the snapshot: cumulative buckets, sum and count', async () => {
  const text = await createDnsMetrics(() => sampleDnsSnapshot()).render();
  assert.match(text, /^# TYPE loom_dns_upstream_duration_seconds histogram$/m);
  // Observations 0.4 ms, 3 ms, 20 ms and 3 s.
  assert.match(text, /^loom_dns_upstream_duration_seconds_bucket\{le="0.001"\} 1$/m);
  assert.match(text, /^loom_dns_upstream_duration_seconds_bucket\{le="0.0025"\} 1$/m);
  assert.match(text, /^loom_dns_upstream_duration_seconds_bucket\{le="0.005"\} 2$/m);
  assert.match(text, /^loom_dns_upstream_duration_seconds_bucket\{le="0.025"\} 3$/m);
  assert.match(text, /^loom_dns_upstream_duration_seconds_bucket\{le="2.5"\} 3$/m);
  assert.match(text, /^loom_dns_upstream_duration_seconds_bucket\{le="\+Inf"\} 4$/m);
  assert.match(text, /^loom_dns_upstream_duration_seconds_count 4$/m);
  assert.match(text, /^loom_dns_upstream_duration_seconds_sum 3\.0234\d*$/m);
  assert.match(text, /^loom_dns_query_types_total\{type="A"\} 10$/m);
  assert.match(text, /^loom_dns_query_types_total\{type="other"\} 2$/m);
  assert.match(text, /^loom_dns_upstream_failures_total\{reason="timeout"\} 2$/m);
});
