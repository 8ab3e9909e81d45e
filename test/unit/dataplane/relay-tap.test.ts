/**
 * The relay's TAP path on real UDP sockets on 127.0.0.1 (no root): each relay gets a fake
 * FrameDevice that records what the relay writes into it, and frames "read from the device" are
 * handed to `onDeviceFrame` as the TAP reader does. A - B - C: A and C route via B.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeClock } from '../../../src/core/clock.js';
import { randomPeerName, type PeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import { decodeHeader, Relay, vnetHeaderOk, VNET_HEADER_BYTES, type RelayInit } from '../../../src/dataplane/relay/index.js';
import { keyPair, LOOPBACK, recordingEndpointFactory, until } from '../../helpers/relay-harness.js';
import type { DatagramEndpoint } from '../../../src/dataplane/relay/endpoint.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const MAC = { a1: '02:00:00:00:0a:01', b1: '02:00:00:00:0b:01', c1: '02:00:00:00:0c:01', nobody: '02:00:00:00:ff:01' };
const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const SEGMENT_MTU = 1400;

interface TapNode {
  name: PeerName;
  relay: Relay;
  /** Frames the relay wrote into its device. */
  device: Buffer[];
  wire: Buffer[];
  address: () => string;
}

async function startTapNode(encrypt: boolean, init: Partial<RelayInit> = {}): Promise<TapNode> {
  const name = randomPeerName();
  const wire: Buffer[] = [];
  const endpoints: DatagramEndpoint[] = [];
  const relay = new Relay(
    { clock: new FakeClock(), logger: silentLogger, endpointFactory: recordingEndpointFactory(wire, endpoints) },
    { self: name, dataPort: 0, bindAddress: LOOPBACK, encrypt, maxFrameBytes: SEGMENT_MTU + 14, ...init },
  );
  const device: Buffer[] = [];
  // The relay's buffers may be reused after write returns, as with a real write(2): copy.
  relay.attachDevice({ write: (frame) => (device.push(Buffer.from(frame)), true) });
  await relay.start();
  cleanups.push(() => relay.stop());
  const port = relay.dataAddress().port;
  return { name, relay, device, wire, address: () => `${LOOPBACK}:${port}` };
}

function link(x: TapNode, y: TapNode, encrypt: boolean): void {
  const [kx, ky] = keyPair();
  x.relay.setNeighbour(y.name, { address: y.address(), keys: encrypt ? kx : null });
  y.relay.setNeighbour(x.name, { address: x.address(), keys: encrypt ? ky : null });
}

async function tapLine(encrypt: boolean, init: Partial<RelayInit> = {}) {
  const [a, b, c] = [await startTapNode(encrypt, init), await startTapNode(encrypt, init), await startTapNode(encrypt, init)];
  link(a, b, encrypt);
  link(b, c, encrypt);
  a.relay.setRoutes((dst) => (dst === b.name || dst === c.name ? b.name : undefined));
  b.relay.setRoutes((dst) => (dst === a.name || dst === c.name ? dst : undefined));
  c.relay.setRoutes((dst) => (dst === b.name || dst === a.name ? b.name : undefined));
  // Each host's table: the other two hosts' MACs, both relayed.
  a.relay.setForwarding({ macs: [{ mac: MAC.b1, peer: b.name }, { mac: MAC.c1, peer: c.name }], floodPeers: [b.name, c.name] });
  b.relay.setForwarding({ macs: [{ mac: MAC.a1, peer: a.name }, { mac: MAC.c1, peer: c.name }], floodPeers: [a.name, c.name] });
  c.relay.setForwarding({ macs: [{ mac: MAC.a1, peer: a.name }, { mac: MAC.b1, peer: b.name }], floodPeers: [a.name, b.name] });
  // Path MTU discovery runs at once on a new neighbour; on loopback it settles in a round trip.
  await until(() => [a, b, c].every((n) => n.relay.stats().neighbours.every((x) => x.pmtuVerified)), 'path MTUs verified');
  return { a, b, c };
}

/** A datagram's size on the underlay: IPv4 + UDP + the datagram. */
function underlayBytes(datagram: Buffer): number {
  return 28 + datagram.length;
}

/** The frame's bytes after its Ethernet, IPv4 (20) and TCP (20) headers. */
function tcpPayload(frame: Buffer): Buffer {
  return frame.subarray(VNET_HEADER_BYTES + 14 + 40);
}

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex');
}

/** A TAP frame: virtio-net header (`vnet`, default none) + Ethernet (dst, src, IPv4 type) + payload. */
function tapFrame(dst: string, src: string, payload: Buffer | string, vnet: number[] = []): Buffer {
  const header = Buffer.alloc(VNET_HEADER_BYTES);
  vnet.forEach((b, i) => (header[i] = b));
  const eth = Buffer.concat([macBytes(dst), macBytes(src), Buffer.from([0x08, 0x00])]);
  return Buffer.concat([header, eth, typeof payload === 'string' ? Buffer.from(payload) : payload]);
}

function checksum(bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return 0xffff - sum;
}

/** An IPv4/TCP packet of `totalLength` bytes with DF set, valid header checksum, a patterned payload. */
function ipv4Tcp(totalLength: number): Buffer {
  const ip = Buffer.alloc(totalLength);
  for (let i = 40; i < totalLength; i++) ip[i] = (i * 7) & 0xff;
  ip[0] = 0x45;
  ip.writeUInt16BE(Math.min(totalLength, 0xffff), 2);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from([10, 32, 0, 1]).copy(ip, 12);
  Buffer.from([10, 32, 0, 9]).copy(ip, 16);
  ip[20 + 12] = 5 << 4; // TCP data offset: 20 bytes
  ip[20 + 13] = 0x18; // ACK + PSH
  ip.writeUInt16BE(checksum(ip.subarray(0, 20)), 10);
  return ip;
}

/** An IPv4/UDP packet of `totalLength` bytes with DF set (no TCP: cannot be re-segmented). */
function ipv4UdpDf(totalLength: number): Buffer {
  const ip = ipv4Tcp(totalLength);
  ip[9] = 17;
  ip.writeUInt16BE(0, 10);
  ip.writeUInt16BE(checksum(ip.subarray(0, 20)), 10);
  return ip;
}

/** A TSO super-frame's virtio-net header: NEEDS_CSUM, GSO TCPv4, hdr_len 54, gso_size, csum at the TCP checksum. */
function gsoHeader(gsoSize: number): number[] {
  return [0x01, 0x01, 54, 0, gsoSize & 0xff, gsoSize >> 8, 34, 0, 16, 0];
}

function dataTypesOnWire(node: TapNode): string[] {
  return node.wire.map((d) => decodeHeader(d).type).filter((t) => t === 'frame' || t === 'frameBatch');
}

for (const encrypt of [true, false]) {
  describe(`relay TAP path (${encrypt ? 'encrypted' : 'plain'})`, () => {
    it('sends a unicast frame to the peer owning its MAC, via B, delivered once at C only', async () => {
      const { a, b, c } = await tapLine(encrypt);
      const frame = tapFrame(MAC.c1, MAC.a1, 'hello-tap-from-a');
      a.relay.onDeviceFrame(frame);
      await until(() => c.device.length === 1, 'delivery at C');
      assert.deepEqual(c.device[0], frame, 'virtio-net header and frame unchanged');
      assert.equal(b.device.length, 0, 'B forwards, never writes it to its bridge');
      assert.equal(b.relay.stats().forwarded, 1);
      assert.equal(c.relay.stats().toDevice, 1);
      assert.equal(a.wire.some((d) => d.includes('hello-tap-from-a')), !encrypt, encrypt ? 'no plaintext on the wire' : 'plain is plain');
    });

    it('floods a broadcast and an unknown unicast to every relayed peer exactly once', async () => {
      const { a, b, c } = await tapLine(encrypt);
      a.relay.onDeviceFrame(tapFrame(BROADCAST, MAC.a1, 'who-has'));
      a.relay.onDeviceFrame(tapFrame(MAC.nobody, MAC.a1, 'unknown'));
      await until(() => b.device.length === 2 && c.device.length === 2, 'floods at B and C');
      for (const node of [b, c]) assert.deepEqual(node.device.map((f) => f.subarray(VNET_HEADER_BYTES + 14).toString()), ['who-has', 'unknown']);
      assert.equal(a.device.length, 0, 'nothing comes back to the sender');
    });

    it('cuts a 60 KB TSO super-frame into datagrams that fit the path MTU, and C gets it back whole', async () => {
      const { a, c } = await tapLine(encrypt, { underlayMtu: 1500 });
      const mss = SEGMENT_MTU - 40;
      const big = tapFrame(MAC.c1, MAC.a1, ipv4Tcp(60_000), gsoHeader(mss));
      a.relay.onDeviceFrame(big);
      await until(() => c.device.reduce((n, f) => n + tcpPayload(f).length, 0) === 60_000 - 40, 'the whole super-frame at C');
      const sent = a.wire.filter((d) => decodeHeader(d).type === 'frame');
      assert.equal(sent.length, Math.ceil((60_000 - 40) / mss), 'one datagram per MSS on a 1500-byte path');
      for (const d of sent) assert.ok(underlayBytes(d) <= 1500, `a ${underlayBytes(d)}-byte datagram on a 1500-byte path`);
      assert.equal(a.relay.stats().batches, 1, 'the whole train in one GSO message');
      assert.deepEqual(Buffer.concat(c.device.map(tcpPayload)), tcpPayload(big), 'the byte stream, in order');
      assert.ok(c.device.length < sent.length / 4, `coalesced into ${c.device.length} frame(s) at C`);
      for (const f of c.device) assert.ok(vnetHeaderOk(f, 0, f.length));
      assert.ok(c.relay.stats().coalescedSegments > 0);

      const burst = Array.from({ length: 50 }, (_, i) => tapFrame(MAC.c1, MAC.a1, `small-${i}-${'z'.repeat(i * 3)}`));
      const before = c.device.length;
      for (const f of burst) a.relay.onDeviceFrame(f);
      await until(() => c.device.length === before + burst.length, 'burst at C');
      assert.deepEqual(c.device.slice(before), burst, 'every frame once, in order');
      assert.ok(dataTypesOnWire(a).includes('frameBatch'), 'the burst went as batches');
    });

    it('uses bigger datagrams on a jumbo path: several MSS per segment, still whole at C', async () => {
      const { a, c } = await tapLine(encrypt);
      const mss = SEGMENT_MTU - 40;
      const big = tapFrame(MAC.c1, MAC.a1, ipv4Tcp(60_000), gsoHeader(mss));
      a.relay.onDeviceFrame(big);
      await until(() => c.device.reduce((n, f) => n + tcpPayload(f).length, 0) === 60_000 - 40, 'the whole super-frame at C');
      const sent = a.wire.filter((d) => decodeHeader(d).type === 'frame');
      const pmtu = a.relay.stats().neighbours.find((n) => n.peer !== c.name)!.pmtu;
      assert.ok(pmtu >= 8900, `loopback path MTU ${pmtu}`);
      assert.ok(sent.length <= 10, `${sent.length} datagrams for 60 KB`);
      for (const d of sent) assert.ok(underlayBytes(d) <= pmtu);
      assert.deepEqual(Buffer.concat(c.device.map(tcpPayload)), tcpPayload(big));
      for (const f of c.device) assert.equal(f.readUInt16LE(4), mss, 'the container still sees its own MSS as gso_size');
    });

    it('answers an over-size DF packet that is not TCP with ICMP fragmentation-needed; re-segments TCP instead', async () => {
      const { a, c } = await tapLine(encrypt);
      a.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.a1, ipv4UdpDf(SEGMENT_MTU + 1)));
      assert.equal(a.device.length, 1, 'an answer written back into our own bridge');
      const answer = a.device[0]!;
      assert.deepEqual([...answer.subarray(0, VNET_HEADER_BYTES)], new Array(VNET_HEADER_BYTES).fill(0), 'no offloads on the answer');
      const ip = answer.subarray(VNET_HEADER_BYTES + 14);
      assert.equal(ip[9], 1, 'ICMP');
      assert.deepEqual([ip[20], ip[21]], [3, 4], 'destination unreachable, fragmentation needed');
      assert.equal(ip.readUInt16BE(26), SEGMENT_MTU, 'next-hop MTU = the segment MTU');
      const s = a.relay.stats();
      assert.equal(s.drops.oversized, 1);
      assert.equal(s.fragNeededSent, 1);
      // TCP over the segment MTU, alone or as a super-frame with over-size segments, is cut to fit.
      // (A lone frame from a container's veth asks for its checksum: CHECKSUM_PARTIAL.)
      a.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.a1, ipv4Tcp(SEGMENT_MTU + 1), [0x01, 0, 0, 0, 0, 0, 34, 0, 16, 0]));
      a.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.a1, ipv4Tcp(30_000), gsoHeader(SEGMENT_MTU)));
      await until(() => c.device.reduce((n, f) => n + tcpPayload(f).length, 0) === SEGMENT_MTU + 1 - 40 + 30_000 - 40, 'both at C');
      for (const f of c.device) assert.ok(f.length - VNET_HEADER_BYTES - 14 <= SEGMENT_MTU || f.readUInt16LE(4) <= SEGMENT_MTU - 40, 'segments within the segment MTU');
      assert.equal(a.relay.stats().drops.oversized, 1);
    });
  });
}

describe('relay TAP path drops', () => {
  it('drops a frame whose virtio-net header the kernel would refuse, at the receiver, counted', async () => {
    const { a, c } = await tapLine(true);
    a.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.a1, 'bad-flags', [0x10]));
    a.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.a1, 'gso-udp', [0x01, 0x03, 0, 0, 100, 0, 34, 0, 6, 0]));
    a.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.a1, 'csum-outside', [0x01, 0x00, 0, 0, 0, 0, 0xff, 0x0f, 0, 0]));
    // The GSO one is refused by the sender already (it cannot be cut to the path), the others by the receiver.
    assert.equal(a.relay.stats().drops['bad-offload'], 1);
    await until(() => c.relay.stats().drops['bad-offload'] === 2, 'two bad-offload drops at C');
    assert.equal(c.device.length, 0);
  });

  it('drops frames without a route or without a device, and short frames, counted', async () => {
    const { a, b, c } = await tapLine(false);
    a.relay.setRoutes(() => undefined);
    a.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.a1, 'no-route'));
    assert.equal(a.relay.stats().drops['no-route'], 1);
    a.relay.onDeviceFrame(Buffer.alloc(VNET_HEADER_BYTES + 5));
    assert.equal(a.relay.stats().drops.malformed, 1);
    c.relay.attachDevice(null);
    b.relay.onDeviceFrame(tapFrame(MAC.c1, MAC.b1, 'to-nowhere'));
    await until(() => c.relay.stats().drops['device-refused'] === 1, 'device-refused at C');
    a.relay.setForwarding({ macs: [], floodPeers: [] });
    a.relay.setRoutes((dst) => (dst === b.name ? b.name : undefined));
    a.relay.onDeviceFrame(tapFrame(BROADCAST, MAC.a1, 'nobody-to-flood-to'));
    assert.equal(a.relay.stats().drops['no-route'], 2, 'a flood with no relayed peer goes nowhere');
  });

  it('vnetHeaderOk never throws and accepts what a TAP device hands out', () => {
    assert.ok(vnetHeaderOk(tapFrame(MAC.c1, MAC.a1, 'x'), 0, VNET_HEADER_BYTES + 15));
    const gso = tapFrame(MAC.c1, MAC.a1, ipv4Tcp(3000), gsoHeader(1360));
    assert.ok(vnetHeaderOk(gso, 0, gso.length));
    const noCsum = Buffer.from(gso);
    noCsum[0] = 0;
    assert.equal(vnetHeaderOk(noCsum, 0, noCsum.length), false, 'GSO without a checksum request');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), (bytes) => {
        const buf = Buffer.from(bytes);
        return typeof vnetHeaderOk(buf, 0, buf.length) === 'boolean';
      }),
      { numRuns: 500 },
    );
  });
});
