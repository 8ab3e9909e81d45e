import { test } from 'node:test';
import assert from 'node:assert/strict';
import { macFromSeed, parseDesiredDataplane, parseInterfaceName, parseIpv4Cidr, parseUnicastMac } from '../../../src/dataplane/index.js';
import { isLoomError } from '../../../src/core/errors.js';

const good = {
  bridge: { name: 'loom', mtu: 1450 },
  vxlan: { name: 'vxlan-loom', vni: 42, port: 4789, mtu: 1450, localIp: '192.168.7.1', localBypass: false },
  peers: [
    { name: '02:00:00:00:00:02', underlayIp: '192.168.7.2', via: 'fastdp' },
    { name: '02:00:00:00:00:03', underlayIp: '192.168.7.3', via: { relayPort: 4790 } },
  ],
  remoteMacs: [{ mac: '02:AA:00:00:00:01', peer: '02:00:00:00:00:02' }],
};

test('a valid config parses, MACs normalised to lower case', () => {
  const d = parseDesiredDataplane(good);
  assert.equal(d.remoteMacs[0]!.mac, '02:aa:00:00:00:01');
  assert.deepEqual(d.peers[1]!.via, { relayPort: 4790 });
});

const bad: Array<[string, (c: any) => void]> = [
  ['not an object', (c) => Object.assign(c, { bridge: 3 })],
  ['bridge name too long', (c) => (c.bridge.name = 'a-very-long-bridge-name')],
  ['bridge name with a slash', (c) => (c.bridge.name = 'lo/om')],
  ['same name twice', (c) => (c.vxlan.name = 'loom')],
  ['vni out of range', (c) => (c.vxlan.vni = 0x1000000)],
  ['mtu too small', (c) => (c.vxlan.mtu = 100)],
  ['local bypass on', (c) => (c.vxlan.localBypass = true)],
  ['bad local ip', (c) => (c.vxlan.localIp = '300.1.1.1')],
  ['bad peer name', (c) => (c.peers[0].name = 'bob')],
  ['duplicate peer', (c) => c.peers.push({ ...c.peers[0] })],
  ['relay port = vxlan port', (c) => (c.peers[1].via = { relayPort: 4789 })],
  ['relay port shared', (c) => (c.peers[0].via = { relayPort: 4790 })],
  ['multicast remote MAC', (c) => (c.remoteMacs[0].mac = '03:00:00:00:00:01')],
  ['MAC of unknown peer', (c) => (c.remoteMacs[0].peer = '02:00:00:00:00:09')],
  ['duplicate remote MAC', (c) => c.remoteMacs.push({ ...c.remoteMacs[0] })],
];
for (const [name, mutate] of bad) {
  test(`rejected with ERR_INVALID_ARGUMENT: ${name}`, () => {
    const c = structuredClone(good);
    mutate(c);
    assert.throws(() => parseDesiredDataplane(c), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  });
}

const tapMode = {
  ...good,
  peers: [...good.peers, { name: '02:00:00:00:00:04', underlayIp: '0.0.0.0', via: 'tap' }],
  remoteMacs: [...good.remoteMacs, { mac: '02:dd:00:00:00:01', peer: '02:00:00:00:00:04' }],
  tap: { name: 'tap-loom', mtu: 65521, gsoMaxSize: 65000 },
  bridgeFdb: [
    { mac: '02:AA:00:00:00:01', dev: 'vxlan-loom' },
    { mac: '02:dd:00:00:00:01', dev: 'tap-loom' },
  ],
};

test('tap mode parses; without tap and bridgeFdb (older memory files, port mode) they default to none', () => {
  const d = parseDesiredDataplane(tapMode);
  assert.deepEqual(d.tap, { name: 'tap-loom', mtu: 65521, gsoMaxSize: 65000 });
  assert.deepEqual(d.bridgeFdb[0], { mac: '02:aa:00:00:00:01', dev: 'vxlan-loom' });
  assert.equal(d.peers[2]!.via, 'tap');
  const old = parseDesiredDataplane(good);
  assert.deepEqual([old.tap, old.bridgeFdb], [null, []]);
});

const badTap: Array<[string, (c: any) => void]> = [
  ['tap named like the bridge', (c) => (c.tap.name = 'loom')],
  ['tap name too long', (c) => (c.tap.name = 'a-very-long-tap-name')],
  ['gso size too big', (c) => (c.tap.gsoMaxSize = 70000)],
  ['pin on another device', (c) => (c.bridgeFdb[0].dev = 'eth0')],
  ['pin of a multicast MAC', (c) => (c.bridgeFdb[0].mac = '01:00:5e:00:00:01')],
  ['pin twice', (c) => c.bridgeFdb.push({ ...c.bridgeFdb[1] })],
  ['pins without a tap', (c) => (c.tap = null)],
  ['unknown path', (c) => (c.peers[2].via = 'carrier-pigeon')],
];
for (const [name, mutate] of badTap) {
  test(`rejected with ERR_INVALID_ARGUMENT: ${name}`, () => {
    const c = structuredClone(tapMode);
    mutate(c);
    assert.throws(() => parseDesiredDataplane(c), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  });
}

test('edge parsers', () => {
  assert.equal(parseInterfaceName('ethwe'), 'ethwe');
  for (const n of ['', '-x', 'a b', 'x'.repeat(16), 'a:b', '..', 7]) assert.throws(() => parseInterfaceName(n), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.deepEqual(parseIpv4Cidr('10.32.0.5/12'), { address: '10.32.0.5', prefix: 12, text: '10.32.0.5/12', network: '10.32.0.0/12' });
  for (const c of ['10.32.0.5', '10.32.0.5/33', '10.32.0.5/0', '10.32.0.5/1x', '::1/64', 'a/b', null]) assert.throws(() => parseIpv4Cidr(c), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  for (const m of ['ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', '02:00:00:00:00', 'zz:00:00:00:00:00']) assert.throws(() => parseUnicastMac(m), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
});

test('macFromSeed is deterministic, unicast, locally administered, and spreads', () => {
  assert.equal(macFromSeed('abc'), macFromSeed('abc'));
  const macs = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const mac = macFromSeed(`c${i}`);
    const first = parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 0x03, 0x02, mac);
    assert.equal(parseUnicastMac(mac), mac);
    macs.add(mac);
  }
  assert.equal(macs.size, 1000);
});
