import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatConnections, formatPeers, formatSummary, formatTargets } from '../../../src/cli/format-status.js';
import { sampleStatus } from '../api/fake-router.js';
import { formatDataplanePaths } from '../../../src/cli/format-dataplane.js';
import type { DataplaneStatus } from '../../../src/dataplane/controller/controller.js';
import type { PeerName } from '../../../src/core/ids.js';

test('summary: aligned key: value lines like weave status', () => {
  assert.equal(
    formatSummary(sampleStatus(), '0.1.0'),
    [
      '        Version: loom 0.1.0 (protocol 1..1)',
      '',
      '        Service: router',
      '       Protocol: loom 1..1',
      '           Name: 8a:3f:00:12:9c:01(host1)',
      '     Encryption: enabled',
      '  PeerDiscovery: enabled',
      '        Targets: 2',
      '    Connections: 3 (2 established, 0 connecting, 0 pending, 1 retrying, 0 failed)',
      '          Peers: 3 (with 5 established connections)',
      '',
    ].join('\n'),
  );
});

test('summary: disabled encryption and discovery, no peers', () => {
  const s = { ...sampleStatus(), encryption: false, peerDiscovery: false, connections: [], peers: [], targets: [], protocolMaxVersion: 2 };
  const text = formatSummary(s, '9.9.9');
  assert.match(text, /^ {5}Encryption: disabled$/m);
  assert.match(text, /^ {2}PeerDiscovery: disabled$/m);
  assert.match(text, /^ {8}Version: loom 9\.9\.9 \(protocol 1\.\.2\)$/m);
  assert.match(text, /^ {4}Connections: 0 \(0 established, 0 connecting, 0 pending, 0 retrying, 0 failed\)$/m);
  assert.match(text, /^ {10}Peers: 0 \(with 0 established connections\)$/m);
});

test('connections: direction, aligned columns, error for retrying', () => {
  assert.equal(
    formatConnections(sampleStatus()),
    [
      '->  192.168.1.2:6783   established  encrypted  8a:3f:00:12:9c:02(host2)',
      '<-  192.168.1.3:41234  established  encrypted  8a:3f:00:12:9c:03(host3)',
      '->  192.168.1.9:6783   retrying                connect ECONNREFUSED (attempt 3)',
      '',
    ].join('\n'),
  );
  assert.equal(formatConnections({ ...sampleStatus(), connections: [] }), '');
});

test('peers: tree form, each peer then its connections', () => {
  const text = formatPeers(sampleStatus());
  const lines = text.split('\n');
  assert.equal(lines[0], '8a:3f:00:12:9c:01(host1)');
  assert.equal(lines[1], '  ->  192.168.1.2:6783   8a:3f:00:12:9c:02(host2)  established');
  assert.equal(lines[2], '  <-  192.168.1.3:41234  8a:3f:00:12:9c:03(host3)  established');
  assert.equal(lines[3], '8a:3f:00:12:9c:02(host2)');
  assert.equal(lines[7], '  ->  192.168.1.1:6783   8a:3f:00:12:9c:01(host1)  established');
  assert.equal(lines[8], '  <-  192.168.1.2:44000  8a:3f:00:12:9c:02(host2)  pending');
  assert.equal(lines.length, 10);
});

test('targets: one per line', () => {
  assert.equal(formatTargets(sampleStatus()), '192.168.1.2:6783\n192.168.1.3:6783\n');
});

test('data plane paths: fastdp, relayed through the tap or a VXLAN port, via a hop, unreachable', () => {
  const base: DataplaneStatus = { bridge: 'loom', vxlan: 'vx-loom', vni: 1, port: 4789, mtu: 1402, localMacs: [], peers: [], applies: 1, lastApplyOps: 0, lastError: null };
  const peers: DataplaneStatus['peers'] = [
    { peer: 'aa:00:00:00:00:01' as PeerName, path: 'fastdp', encrypted: false, mtu: 1402, underlayIp: '192.168.1.1', macs: 1, pmtu: 1500 },
    { peer: 'aa:00:00:00:00:02' as PeerName, path: 'sleeve', encrypted: true, mtu: 1402, underlayIp: '192.168.1.2', via: 'aa:00:00:00:00:01' as PeerName, reason: 'UDP to the peer is blocked', macs: 2 },
    { peer: 'aa:00:00:00:00:03' as PeerName, path: 'unreachable', encrypted: false, mtu: 1402, underlayIp: null, reason: 'no relay', macs: 0 },
  ];
  const tap = formatDataplanePaths({ ...base, tap: 'tap-loom', peers });
  assert.match(tap, /aa:00:00:00:00:01\s+fastdp\s+unencrypted\s+mtu=1402\s+pmtu=1500\s+192\.168\.1\.1\n/);
  assert.match(tap, /aa:00:00:00:00:02\s+sleeve\s+encrypted\s+mtu=1402\s+pmtu=\?\s+192\.168\.1\.2 relay:tap via aa:00:00:00:00:01 \(UDP to the peer is blocked\)/);
  assert.match(tap, /aa:00:00:00:00:03\s+unreachable\s+mtu=1402\s+\(no relay\)/);
  const port = formatDataplanePaths({ ...base, peers: [{ ...peers[1]!, relayPort: 40001 }] });
  assert.match(port, /relay:40001 via/, 'the VXLAN-port path names its local port');
  assert.doesNotMatch(port, /relay:tap/);
  assert.equal(formatDataplanePaths(undefined), '', 'no data plane, no section');
});
