/**
 * The rtnetlink codec of attach without root: each request against a hand-computed byte layout
 * (golden hex, little-endian), each decoder on a kernel-shaped answer, and the input checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoomError } from '../../../src/core/errors.js';
import { decodeAttrs, decodeMessages, encodeAttr, encodeIfinfomsg, encodeNested, encodeString, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO, RTM_GETLINK, RTM_NEWLINK } from '../../../src/os/netlink-codec.js';
import {
  decodeAddr4,
  decodeLink,
  decodeRoute4,
  encodeDelLink,
  encodeGetAddrs4,
  encodeGetLinkByName,
  encodeGetRoutes4,
  encodeNewAddr4,
  encodeNewRoute4,
  encodeNewVeth,
  encodeSetArpNotify,
  encodeSetLink,
  IFLA_ADDRESS,
  IFLA_BRPORT_STATE,
  IFLA_INFO_SLAVE_DATA,
  IFLA_INFO_SLAVE_KIND,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  isMainDefault,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_TABLE,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWROUTE,
  VETH_INFO_PEER,
} from '../../../src/os/rtnl-codec.js';
import { errnoName } from '../../../src/os/netlink.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('arp_notify: RTM_NEWLINK with IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF / IPV4_DEVCONF_ARP_NOTIFY(22) = 1', () => {
  assert.deepEqual(
    encodeSetArpNotify(9, 1, 7),
    hex(`34000000 1000 0500 07000000 00000000
         00 00 0000 09000000 00000000 00000000
         1400 1a80  1000 0280  0c00 0180  0800 1600 01000000`),
  );
});

test('address: RTM_NEWADDR create|excl|ack, ifaddrmsg AF_INET /12 on index 4, IFA_LOCAL and IFA_ADDRESS', () => {
  assert.deepEqual(
    encodeNewAddr4(4, '10.32.0.5', 12, 3),
    hex(`28000000 1400 0506 03000000 00000000
         02 0c 00 00 04000000
         0800 0200 0a200005  0800 0100 0a200005`),
  );
});

test('routes: replace default via GW dev #4 (scope universe), 224.0.0.0/4 dev #4 (scope link), add without replace is EXCL', () => {
  assert.deepEqual(
    encodeNewRoute4({ dst: '0.0.0.0', prefix: 0, oif: 4, gateway: '10.32.0.1' }, true, 2),
    hex(`2c000000 1800 0505 02000000 00000000
         02 00 00 00 fe 03 00 01 00000000
         0800 0500 0a200001  0800 0400 04000000`),
  );
  assert.deepEqual(
    encodeNewRoute4({ dst: '224.0.0.0', prefix: 4, oif: 4 }, true, 2),
    hex(`2c000000 1800 0505 02000000 00000000
         02 04 00 00 fe 03 fd 01 00000000
         0800 0100 e0000000  0800 0400 04000000`),
  );
  assert.equal(encodeNewRoute4({ dst: '0.0.0.0', prefix: 0, oif: 4, gateway: '10.32.0.1' }, false, 2).readUInt16LE(6), 0x605);
});

test('dumps: RTM_GETROUTE and RTM_GETADDR with NLM_F_REQUEST|NLM_F_DUMP and family AF_INET', () => {
  assert.deepEqual(encodeGetRoutes4(5), hex('1c000000 1a00 0103 05000000 00000000  02 00 00 00 00 00 00 00 00000000'));
  assert.deepEqual(encodeGetAddrs4(5), hex('18000000 1600 0103 05000000 00000000  02 00 00 00 00000000'));
  assert.equal(encodeGetRoutes4(1).readUInt16LE(4), RTM_GETROUTE);
  assert.equal(encodeGetAddrs4(1).readUInt16LE(4), RTM_GETADDR);
});

test('links by name: get (with RTEXT_FILTER_SKIP_STATS), delete, set up, set MAC', () => {
  assert.deepEqual(
    encodeGetLinkByName('ethwe', 1),
    hex(`34000000 1200 0100 01000000 00000000
         00 00 0000 00000000 00000000 00000000
         0a00 0300 65746877 65000000  0800 1d00 08000000`),
  );
  assert.equal(encodeGetLinkByName('ethwe', 1).readUInt16LE(4), RTM_GETLINK);
  assert.deepEqual(
    encodeDelLink('vlm1', 1),
    hex(`2c000000 1100 0500 01000000 00000000
         00 00 0000 00000000 00000000 00000000
         0900 0300 766c6d31 00000000`),
  );
  assert.equal(encodeDelLink('x', 1).readUInt16LE(4), RTM_DELLINK);
  // lo up by name: flags = change = IFF_UP
  assert.deepEqual(
    encodeSetLink('lo', { up: true }, 1),
    hex(`28000000 1000 0500 01000000 00000000
         00 00 0000 00000000 01000000 01000000
         0700 0300 6c6f0000`),
  );
  // MAC by index: no flags changed
  assert.deepEqual(
    encodeSetLink(6, { mac: '02:aa:00:00:00:05' }, 1),
    hex(`2c000000 1000 0500 01000000 00000000
         00 00 0000 06000000 00000000 00000000
         0a00 0100 02aa0000 00050000`),
  );
});

test('veth: create|excl, host end up with MTU and master; VETH_INFO_PEER holds an ifinfomsg and the peer name, MTU, MAC, netns fd', () => {
  const msg = encodeNewVeth({ name: 'vlmpod1', mtu: 1376, master: 3, up: true, peer: { name: 'ethwe', mtu: 1376, mac: '02:aa:00:00:00:05', netnsFd: 21 } }, 8);
  const [m] = decodeMessages(msg);
  assert.equal(m!.type, RTM_NEWLINK);
  assert.equal(m!.flags, 0x1 | 0x4 | 0x400 | 0x200);
  assert.deepEqual(m!.payload.subarray(0, 16), encodeIfinfomsg(0, 1, 1));
  const attrs = decodeAttrs(m!.payload.subarray(16));
  assert.equal(attrs.get(IFLA_IFNAME)!.toString(), 'vlmpod1\0');
  assert.equal(attrs.get(IFLA_MTU)!.readUInt32LE(0), 1376);
  assert.equal(attrs.get(IFLA_MASTER)!.readUInt32LE(0), 3);
  assert.equal(msg.readUInt16LE(16 + 16 + 12 + 8 + 8 + 2), IFLA_LINKINFO | 0x8000, 'LINKINFO is nested');
  const info = decodeAttrs(attrs.get(IFLA_LINKINFO)!);
  assert.equal(info.get(IFLA_INFO_KIND)!.toString(), 'veth\0');
  const peer = decodeAttrs(info.get(IFLA_INFO_DATA)!).get(VETH_INFO_PEER)!;
  assert.deepEqual(peer.subarray(0, 16), Buffer.alloc(16), 'the peer ifinfomsg');
  const peerAttrs = decodeAttrs(peer.subarray(16));
  assert.equal(peerAttrs.get(IFLA_IFNAME)!.toString(), 'ethwe\0');
  assert.equal(peerAttrs.get(IFLA_MTU)!.readUInt32LE(0), 1376);
  assert.deepEqual(peerAttrs.get(IFLA_ADDRESS), hex('02aa00000005'));
  assert.equal(peerAttrs.get(IFLA_NET_NS_FD)!.readUInt32LE(0), 21);
});

function u32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return encodeAttr(type, b);
}

test('decodeLink: index, name, MAC, up, MTU, master and the bridge-port STP state from IFLA_INFO_SLAVE_DATA', () => {
  const port = Buffer.concat([
    encodeIfinfomsg(12, 0x1043, 0),
    encodeString(IFLA_IFNAME, 'vlmpod1'),
    u32(IFLA_MTU, 1376),
    u32(IFLA_MASTER, 3),
    encodeAttr(IFLA_ADDRESS, hex('aabbccddeeff')),
    encodeNested(IFLA_LINKINFO, [encodeString(IFLA_INFO_KIND, 'veth'), encodeString(IFLA_INFO_SLAVE_KIND, 'bridge'), encodeNested(IFLA_INFO_SLAVE_DATA, [encodeAttr(IFLA_BRPORT_STATE, Uint8Array.of(3))])]),
  ]);
  assert.deepEqual(decodeLink(port), { index: 12, name: 'vlmpod1', mac: 'aa:bb:cc:dd:ee:ff', up: true, mtu: 1376, master: 3, bridgePortState: 3 });
  const plain = Buffer.concat([encodeIfinfomsg(1, 0, 0), encodeString(IFLA_IFNAME, 'lo')]);
  assert.deepEqual(decodeLink(plain), { index: 1, name: 'lo', mac: '', up: false, mtu: null, master: null, bridgePortState: null });
  assert.throws(() => decodeLink(Buffer.alloc(8)), (e) => isLoomError(e, 'ERR_PROTOCOL'));
  assert.throws(() => decodeLink(Buffer.concat([encodeIfinfomsg(1), hex('ff00 0300')])), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('decodeAddr4 and decodeRoute4 read what the encoders wrote (kernel answers have the same layout)', () => {
  const addr = decodeMessages(encodeNewAddr4(4, '10.32.0.5', 12, 1))[0]!;
  assert.equal(addr.type, RTM_NEWADDR);
  assert.deepEqual(decodeAddr4(addr.payload), { index: 4, address: '10.32.0.5', prefix: 12 });
  assert.equal(decodeAddr4(Buffer.concat([hex('0a400000 04000000')])), null, 'IPv6 is skipped');
  const route = decodeMessages(encodeNewRoute4({ dst: '0.0.0.0', prefix: 0, oif: 4, gateway: '10.32.0.1' }, true, 1))[0]!;
  assert.equal(route.type, RTM_NEWROUTE);
  const r = decodeRoute4(route.payload)!;
  assert.deepEqual(r, { dst: '0.0.0.0', prefix: 0, table: 254, type: 1, oif: 4, gateway: '10.32.0.1' });
  assert.equal(isMainDefault(r), true);
  // The kernel reports the table in RTA_TABLE too; the local table's routes are not defaults of main.
  const local = Buffer.concat([hex('02 00 00 00 ff 02 fe 02 00000000'), u32(RTA_TABLE, 255), u32(RTA_OIF, 1)]);
  assert.equal(isMainDefault(decodeRoute4(local)!), false);
  const multipath = decodeRoute4(Buffer.concat([hex('02 00 00 00 fe 03 00 01 00000000'), u32(RTA_TABLE, 254)]))!;
  assert.deepEqual([multipath.oif, multipath.gateway], [null, null]);
  assert.throws(() => decodeRoute4(Buffer.concat([hex('02 00 00 00 fe 03 00 01 00000000'), encodeAttr(RTA_GATEWAY, hex('0a20'))])), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('inputs are checked: interface names, MACs, IPv4 addresses, prefix lengths', () => {
  const bad = (f: () => unknown) => assert.throws(f, (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  bad(() => encodeGetLinkByName('', 1));
  bad(() => encodeGetLinkByName('a-name-too-long-for-linux', 1));
  bad(() => encodeDelLink('a/b', 1));
  bad(() => encodeSetLink(3, { mac: '02:aa:00:00:00' }, 1));
  bad(() => encodeNewAddr4(3, '10.32.0.256', 12, 1));
  bad(() => encodeNewAddr4(3, '10.32.0.5', 33, 1));
  bad(() => encodeNewRoute4({ dst: '10.1', prefix: 8, oif: 1 }, true, 1));
});

test('errno names come from Node\'s table', () => {
  assert.equal(errnoName(17), 'EEXIST');
  assert.equal(errnoName(19), 'ENODEV');
  assert.equal(errnoName(99999), 'errno 99999');
});
