import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBridgeFdb, parseFdb, parseLinks } from '../../../src/dataplane/index.js';
import { isLoomError } from '../../../src/core/errors.js';

// Trimmed from real `ip -j -d link show` / `bridge -j fdb show dev vxt0` output (iproute2 6.1, kernel 6.18).
const LINKS = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK'], mtu: 65536 },
  { ifname: 'loom', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1450, address: '7A:00:00:00:0B:01', linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } } },
  {
    ifname: 'vxlan-loom',
    flags: ['BROADCAST', 'MULTICAST'],
    mtu: 1450,
    master: 'loom',
    linkinfo: { info_kind: 'vxlan', info_data: { id: 5, local: '192.168.9.1', port: 4789, learning: false }, info_slave_kind: 'bridge' },
  },
  { ifname: 'eth0', flags: ['UP'], mtu: 1500 },
  // A tap made by the relay, isolated port of the bridge (ip -j -d link show tp0, iproute2 6.1).
  {
    ifindex: 4,
    ifname: 'tap-loom',
    flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
    mtu: 65521,
    master: 'loom',
    linkinfo: {
      info_kind: 'tun',
      info_data: { type: 'tap', pi: false, vnet_hdr: true, multi_queue: false, persist: true },
      info_slave_kind: 'bridge',
      info_slave_data: { state: 'disabled', priority: 32, cost: 2, hairpin: false, learning: true, flood: true, mcast_flood: true, bcast_flood: true, neigh_suppress: false, vlan_tunnel: false, isolated: true, locked: false },
    },
    num_tx_queues: 1,
    gso_max_size: 65000,
    gso_max_segs: 65535,
    tso_max_size: 65536,
  },
]);
const FDB = JSON.stringify([
  { mac: 'c6:cd:50:9d:83:95', flags: [], master: 'loom', state: 'permanent' },
  { mac: '02:11:22:33:44:56', dst: '127.0.0.1', flags: ['self'], state: 'permanent' },
  { mac: '00:00:00:00:00:00', dst: '192.168.9.2', flags: ['self'], state: 'permanent' },
  { mac: '00:00:00:00:00:00', dst: '127.0.0.1', port: 4790, flags: ['self'], state: 'permanent' },
]);

test('parseLinks keeps only wanted names and reads kind, mtu, up, master, vxlan attributes', () => {
  const links = parseLinks(LINKS, new Set(['loom', 'vxlan-loom', 'absent']));
  assert.deepEqual([...links.keys()], ['loom', 'vxlan-loom']);
  assert.deepEqual(links.get('loom'), { name: 'loom', kind: 'bridge', mtu: 1450, up: true, master: null, vxlan: null, isolated: null, gsoMaxSize: null, address: '7a:00:00:00:0b:01' });
  assert.deepEqual(links.get('vxlan-loom'), {
    name: 'vxlan-loom',
    kind: 'vxlan',
    mtu: 1450,
    up: false,
    master: 'loom',
    vxlan: { vni: 5, port: 4789, localIp: '192.168.9.1', learning: false, localBypass: null },
    isolated: null,
    gsoMaxSize: null,
    address: null,
  });
});

test('parseLinks reads the bridge port flag isolated and gso_max_size (a tap as the relay makes it)', () => {
  assert.deepEqual(parseLinks(LINKS, new Set(['tap-loom'])).get('tap-loom'), {
    name: 'tap-loom',
    kind: 'tun',
    mtu: 65521,
    up: true,
    master: 'loom',
    vxlan: null,
    isolated: true,
    gsoMaxSize: 65000,
    address: null,
  });
  const notIsolated = LINKS.replace('"isolated":true', '"isolated":false');
  assert.equal(parseLinks(notIsolated, new Set(['tap-loom'])).get('tap-loom')!.isolated, false);
});

// Real `bridge -j fdb show br br0` (iproute2 6.1, kernel 6.18): vxlan vx0 and tap tp0 as ports,
// entries pinned with `bridge fdb replace MAC dev PORT master static sticky` (one without sticky),
// the vxlan device's own entries (self, with dst), the ports' and the bridge's own addresses.
const BRIDGE_FDB =
  '[{"mac":"33:33:00:00:00:01","ifname":"br0","flags":["self"],"state":"permanent"},{"mac":"01:00:5e:00:00:01","ifname":"br0","flags":["self"],"state":"permanent"},' +
  '{"mac":"33:33:ff:e0:c0:15","ifname":"br0","flags":["self"],"state":"permanent"},{"mac":"02:00:00:00:00:01","ifname":"vx0","flags":["sticky"],"master":"br0","state":"static"},' +
  '{"mac":"56:6b:d1:ee:3f:ff","ifname":"vx0","flags":[],"master":"br0","state":"permanent"},{"mac":"00:00:00:00:00:00","ifname":"vx0","dst":"10.0.0.2","flags":["self"],"state":"permanent"},' +
  '{"mac":"02:00:00:00:00:03","ifname":"tp0","flags":[],"master":"br0","state":"static"},{"mac":"02:00:00:00:00:02","ifname":"tp0","flags":["sticky"],"master":"br0","state":"static"},' +
  '{"mac":"0a:48:ff:86:5f:48","ifname":"tp0","flags":[],"master":"br0","state":"permanent"},{"mac":"33:33:00:00:00:01","ifname":"tp0","flags":["self"],"state":"permanent"},' +
  '{"mac":"01:00:5e:00:00:01","ifname":"tp0","flags":["self"],"state":"permanent"}]';

test('parseBridgeFdb keeps the static entries of the bridge on the given ports, and nothing else', () => {
  assert.deepEqual(parseBridgeFdb(BRIDGE_FDB, new Set(['vx0', 'tp0'])), [
    { mac: '02:00:00:00:00:01', dev: 'vx0' },
    { mac: '02:00:00:00:00:03', dev: 'tp0' },
    { mac: '02:00:00:00:00:02', dev: 'tp0' },
  ]);
  assert.deepEqual(parseBridgeFdb(BRIDGE_FDB, new Set(['vx0'])), [{ mac: '02:00:00:00:00:01', dev: 'vx0' }], 'only the ports asked for');
  // Learned entries have no state; upper-case MACs are normalised.
  const learned = '[{"mac":"02:AB:00:00:00:01","ifname":"vx0","flags":[],"master":"br0","state":"static"},{"mac":"02:00:00:00:00:09","ifname":"vx0","flags":[],"master":"br0"}]';
  assert.deepEqual(parseBridgeFdb(learned, new Set(['vx0'])), [{ mac: '02:ab:00:00:00:01', dev: 'vx0' }]);
  assert.deepEqual(parseBridgeFdb('', new Set(['vx0'])), []);
  assert.throws(() => parseBridgeFdb('Error: bridge does not exist', new Set(['vx0'])), (e) => isLoomError(e, 'ERR_OS_COMMAND'));
});

test('parseLinks reads localbypass when iproute2 >= 6.5 prints it', () => {
  const text = JSON.stringify([{ ifname: 'vx', flags: [], mtu: 1450, linkinfo: { info_kind: 'vxlan', info_data: { id: 1, port: 4789, learning: false, localbypass: false } } }]);
  assert.equal(parseLinks(text, new Set(['vx'])).get('vx')!.vxlan!.localBypass, false);
});

test('parseFdb keeps the vxlan entries with a destination; port only when it differs from the device port', () => {
  assert.deepEqual(parseFdb(FDB), [
    { mac: '02:11:22:33:44:56', dst: '127.0.0.1', port: null },
    { mac: '00:00:00:00:00:00', dst: '192.168.9.2', port: null },
    { mac: '00:00:00:00:00:00', dst: '127.0.0.1', port: 4790 },
  ]);
  assert.deepEqual(parseFdb(''), []);
});

test('output that is not a JSON array is ERR_OS_COMMAND, not a crash', () => {
  for (const bad of ['{', '{"a":1}', 'Error: Device does not exist']) {
    assert.throws(() => parseFdb(bad), (e) => isLoomError(e, 'ERR_OS_COMMAND'));
    assert.throws(() => parseLinks(bad, new Set()), (e) => isLoomError(e, 'ERR_OS_COMMAND'));
  }
  // Items of the wrong shape are skipped.
  assert.deepEqual(parseFdb('[1, null, {"mac": 3, "dst": "1.2.3.4"}]'), []);
});
