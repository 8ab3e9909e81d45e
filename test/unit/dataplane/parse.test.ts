import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFdb, parseLinks } from '../../../src/dataplane/index.js';
import { isLoomError } from '../../../src/core/errors.js';

// Trimmed from real `ip -j -d link show` / `bridge -j fdb show dev vxt0` output (iproute2 6.1, kernel 6.18).
const LINKS = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK'], mtu: 65536 },
  { ifname: 'loom', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1450, linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } } },
  {
    ifname: 'vxlan-loom',
    flags: ['BROADCAST', 'MULTICAST'],
    mtu: 1450,
    master: 'loom',
    linkinfo: { info_kind: 'vxlan', info_data: { id: 5, local: '192.168.9.1', port: 4789, learning: false }, info_slave_kind: 'bridge' },
  },
  { ifname: 'eth0', flags: ['UP'], mtu: 1500 },
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
  assert.deepEqual(links.get('loom'), { name: 'loom', kind: 'bridge', mtu: 1450, up: true, master: null, vxlan: null });
  assert.deepEqual(links.get('vxlan-loom'), {
    name: 'vxlan-loom',
    kind: 'vxlan',
    mtu: 1450,
    up: false,
    master: 'loom',
    vxlan: { vni: 5, port: 4789, localIp: '192.168.9.1', learning: false, localBypass: null },
  });
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
