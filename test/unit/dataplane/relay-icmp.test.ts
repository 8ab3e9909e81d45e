/**
 * ICMP "fragmentation needed" on the relay path: the pure builder (fields and checksums decoded
 * and verified here independently of src/), hostile bytes (fast-check), and the relay answering
 * an over-size DF frame from the kernel with a VXLAN datagram to its stand-in kernel port.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { FakeClock } from '../../../src/core/clock.js';
import { isLoomError } from '../../../src/core/errors.js';
import { randomPeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import { FRAG_NEEDED_MAX_FRAME_BYTES, fragNeededFor } from '../../../src/dataplane/relay/icmp.js';
import { Relay } from '../../../src/dataplane/relay/index.js';

const SENDER_MAC = '02aa00000001';
const ROUTER_MAC = '02bb00000002';

/** Ones-complement sum of 16-bit words, written independently of src/: a valid range sums to 0xffff. */
function onesComplementSum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = Math.floor(sum / 65536) + (sum % 65536);
  return sum;
}

interface PacketSpec {
  totalLength: number;
  df?: boolean;
  mf?: boolean;
  fragmentOffset?: number;
  protocol?: number;
  optionBytes?: number;
  tos?: number;
  src?: string;
  dst?: string;
  ethDst?: string;
  ethSrc?: string;
  ethertype?: number;
  /** First payload bytes (e.g. an ICMP type); the rest is a counting pattern. */
  payloadHead?: number[];
  /** Leave the header checksum wrong. */
  badChecksum?: boolean;
}

function ipBytes(dotted: string): number[] {
  return dotted.split('.').map(Number);
}

/** An Ethernet frame carrying one IPv4 packet of exactly `totalLength` bytes. */
function ipv4Frame(spec: PacketSpec): Buffer {
  const headerBytes = 20 + (spec.optionBytes ?? 0);
  const frame = Buffer.alloc(14 + spec.totalLength);
  Buffer.from(spec.ethDst ?? ROUTER_MAC, 'hex').copy(frame, 0);
  Buffer.from(spec.ethSrc ?? SENDER_MAC, 'hex').copy(frame, 6);
  frame.writeUInt16BE(spec.ethertype ?? 0x0800, 12);
  const ip = frame.subarray(14);
  ip[0] = 0x40 | (headerBytes / 4);
  ip[1] = spec.tos ?? 0;
  ip.writeUInt16BE(spec.totalLength, 2);
  ip.writeUInt16BE(0x1234, 4);
  ip.writeUInt16BE(((spec.df ?? true) ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) | (spec.fragmentOffset ?? 0), 6);
  ip[8] = 63;
  ip[9] = spec.protocol ?? 6;
  Buffer.from(ipBytes(spec.src ?? '10.32.0.1')).copy(ip, 12);
  Buffer.from(ipBytes(spec.dst ?? '10.40.0.7')).copy(ip, 16);
  for (let i = 20; i < headerBytes; i++) ip[i] = 1; // NOP options
  for (let i = headerBytes; i < spec.totalLength; i++) ip[i] = (i * 7) & 0xff;
  (spec.payloadHead ?? []).forEach((b, i) => (ip[headerBytes + i] = b));
  const sum = onesComplementSum(ip.subarray(0, headerBytes));
  ip.writeUInt16BE(spec.badChecksum ? 0xbeef : 0xffff - sum, 10);
  return frame;
}

interface DecodedAnswer {
  ethDst: string;
  ethSrc: string;
  ethertype: number;
  ipVersionIhl: number;
  tos: number;
  totalLength: number;
  idFlagsOffset: number;
  ttl: number;
  protocol: number;
  ipSrc: string;
  ipDst: string;
  ipChecksumOk: boolean;
  icmpType: number;
  icmpCode: number;
  unused: number;
  nextHopMtu: number;
  icmpChecksumOk: boolean;
  quoted: Buffer;
}

function decodeAnswer(bytes: Uint8Array): DecodedAnswer {
  const b = Buffer.from(bytes);
  const ip = b.subarray(14);
  const icmp = ip.subarray(20, ip.readUInt16BE(2));
  return {
    ethDst: b.subarray(0, 6).toString('hex'),
    ethSrc: b.subarray(6, 12).toString('hex'),
    ethertype: b.readUInt16BE(12),
    ipVersionIhl: ip[0]!,
    tos: ip[1]!,
    totalLength: ip.readUInt16BE(2),
    idFlagsOffset: ip.readUInt32BE(4),
    ttl: ip[8]!,
    protocol: ip[9]!,
    ipSrc: [...ip.subarray(12, 16)].join('.'),
    ipDst: [...ip.subarray(16, 20)].join('.'),
    ipChecksumOk: onesComplementSum(ip.subarray(0, 20)) === 0xffff,
    icmpType: icmp[0]!,
    icmpCode: icmp[1]!,
    unused: icmp.readUInt16BE(4),
    nextHopMtu: icmp.readUInt16BE(6),
    icmpChecksumOk: onesComplementSum(icmp) === 0xffff,
    quoted: icmp.subarray(8),
  };
}

describe('fragNeededFor', () => {
  it('answers an over-size DF packet with fragmentation needed, back to its sender', () => {
    const frame = ipv4Frame({ totalLength: 1500, tos: 0x10, src: '10.32.0.1', dst: '10.40.0.7' });
    const answer = fragNeededFor(frame, 1404);
    assert.ok(answer);
    assert.equal(answer.length, 14 + 20 + 8 + 20 + 8);
    const d = decodeAnswer(answer);
    assert.equal(d.ethDst, SENDER_MAC);
    assert.equal(d.ethSrc, ROUTER_MAC);
    assert.equal(d.ethertype, 0x0800);
    assert.equal(d.ipVersionIhl, 0x45);
    assert.equal(d.tos, 0x10);
    assert.equal(d.totalLength, answer.length - 14);
    assert.equal(d.idFlagsOffset, 0);
    assert.equal(d.ttl, 64);
    assert.equal(d.protocol, 1);
    assert.equal(d.ipSrc, '10.40.0.7');
    assert.equal(d.ipDst, '10.32.0.1');
    assert.ok(d.ipChecksumOk, 'IP header checksum');
    assert.equal(d.icmpType, 3);
    assert.equal(d.icmpCode, 4);
    assert.equal(d.unused, 0);
    assert.equal(d.nextHopMtu, 1404);
    assert.ok(d.icmpChecksumOk, 'ICMP checksum');
    assert.deepEqual(d.quoted, frame.subarray(14, 14 + 28), 'original IP header + 8 payload bytes');
  });

  it('quotes IP options with the header, and the answer is the longest one', () => {
    const frame = ipv4Frame({ totalLength: 2000, optionBytes: 40 });
    const answer = fragNeededFor(frame, 1404);
    assert.ok(answer);
    assert.equal(answer.length, FRAG_NEEDED_MAX_FRAME_BYTES);
    const d = decodeAnswer(answer);
    assert.ok(d.ipChecksumOk && d.icmpChecksumOk);
    assert.deepEqual(d.quoted, frame.subarray(14, 14 + 60 + 8));
  });

  it('answers ICMP echo (ping -M do) but never an ICMP error', () => {
    assert.ok(fragNeededFor(ipv4Frame({ totalLength: 1500, protocol: 1, payloadHead: [8, 0] }), 1404), 'echo request');
    for (const type of [3, 4, 5, 11, 12]) {
      assert.equal(fragNeededFor(ipv4Frame({ totalLength: 1500, protocol: 1, payloadHead: [type, 0] }), 1404), null, `ICMP type ${type}`);
    }
  });

  it('answers only packets longer than the MTU (the IP total length counts, not the frame)', () => {
    assert.equal(fragNeededFor(ipv4Frame({ totalLength: 1404 }), 1404), null);
    assert.ok(fragNeededFor(ipv4Frame({ totalLength: 1405 }), 1404));
    // Ethernet padding or trailing bytes beyond the IP packet do not make it too big.
    const padded = Buffer.concat([ipv4Frame({ totalLength: 1000 }), Buffer.alloc(600)]);
    assert.equal(fragNeededFor(padded, 1404), null);
  });

  it('returns null for everything that must not be answered', () => {
    const cases: Array<[string, PacketSpec]> = [
      ['DF clear', { totalLength: 1500, df: false }],
      ['non-first fragment', { totalLength: 1500, fragmentOffset: 185 }],
      ['bad header checksum', { totalLength: 1500, badChecksum: true }],
      ['IPv6 ethertype', { totalLength: 1500, ethertype: 0x86dd }],
      ['VLAN tag', { totalLength: 1500, ethertype: 0x8100 }],
      ['broadcast frame', { totalLength: 1500, ethDst: 'ffffffffffff' }],
      ['multicast frame', { totalLength: 1500, ethDst: '01005e000001' }],
      ['group source MAC', { totalLength: 1500, ethSrc: '030000000001' }],
      ['source 0.0.0.0', { totalLength: 1500, src: '0.0.0.0' }],
      ['loopback source', { totalLength: 1500, src: '127.0.0.1' }],
      ['multicast source', { totalLength: 1500, src: '224.0.0.1' }],
      ['broadcast source', { totalLength: 1500, src: '255.255.255.255' }],
      ['multicast destination', { totalLength: 1500, dst: '239.1.2.3' }],
      ['broadcast destination', { totalLength: 1500, dst: '255.255.255.255' }],
    ];
    for (const [what, spec] of cases) assert.equal(fragNeededFor(ipv4Frame(spec), 1404), null, what);
  });

  it('returns null for malformed or truncated headers', () => {
    const good = ipv4Frame({ totalLength: 1500 });
    assert.ok(fragNeededFor(good, 1404));
    const truncated = good.subarray(0, 1000); // total length claims more than the frame holds
    assert.equal(fragNeededFor(truncated, 600), null);
    for (const n of [0, 1, 13, 14, 33]) assert.equal(fragNeededFor(good.subarray(0, n), 68), null, `${n} bytes`);
    const v6 = Buffer.from(good);
    v6[14] = 0x65;
    assert.equal(fragNeededFor(v6, 1404), null, 'version 6 in an IPv4 frame');
    const shortIhl = Buffer.from(good);
    shortIhl[14] = 0x44;
    assert.equal(fragNeededFor(shortIhl, 1404), null, 'IHL < 5');
    const tinyTotal = ipv4Frame({ totalLength: 80, optionBytes: 40 });
    tinyTotal.writeUInt16BE(64, 16); // total length < header + 8 (checksum now wrong too, both rejected)
    assert.equal(fragNeededFor(tinyTotal, 68), null);
  });

  it('writes into the caller buffer without allocating another', () => {
    const out = new Uint8Array(FRAG_NEEDED_MAX_FRAME_BYTES + 10).fill(0xee);
    const answer = fragNeededFor(ipv4Frame({ totalLength: 9000 }), 8950, out);
    assert.ok(answer);
    assert.equal(answer.buffer, out.buffer);
    assert.equal(answer.byteOffset, out.byteOffset);
    assert.equal(decodeAnswer(answer).nextHopMtu, 8950);
    assert.ok(decodeAnswer(answer).icmpChecksumOk);
    assert.equal(out[answer.length], 0xee, 'nothing written past the answer');
  });

  it('rejects caller mistakes with ERR_INVALID_ARGUMENT', () => {
    const frame = ipv4Frame({ totalLength: 1500 });
    for (const mtu of [67, 65536, 1404.5, NaN, -1]) {
      assert.throws(() => fragNeededFor(frame, mtu), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), String(mtu));
    }
    assert.throws(() => fragNeededFor(frame, 1404, new Uint8Array(FRAG_NEEDED_MAX_FRAME_BYTES - 1)), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  });

  it('never throws on random bytes, and whatever it answers is well-formed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.integer({ min: 68, max: 200 }), (bytes, mtu) => {
        const answer = fragNeededFor(bytes, mtu);
        if (answer === null) return;
        const d = decodeAnswer(answer);
        assert.ok(d.ipChecksumOk && d.icmpChecksumOk);
        assert.equal(d.nextHopMtu, mtu);
      }),
      { numRuns: 2000 },
    );
  });

  it('answers random valid DF packets exactly when they exceed the MTU', () => {
    // Random DF packets (any header length, size, protocol, TOS, addresses): each must be answered
    // exactly when it is longer than the MTU, with checksums that verify and the right quote.
    const spec = fc.record({
      totalLength: fc.integer({ min: 100, max: 3000 }),
      optionWords: fc.integer({ min: 0, max: 10 }),
      tos: fc.integer({ min: 0, max: 255 }),
      protocol: fc.constantFrom(6, 17, 47),
      src: fc.tuple(fc.integer({ min: 1, max: 126 }), fc.integer({ min: 0, max: 255 })),
      dst: fc.tuple(fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 255 })),
      mtu: fc.integer({ min: 68, max: 3000 }),
    });
    fc.assert(
      fc.property(spec, (s) => {
        const frame = ipv4Frame({
          totalLength: s.totalLength,
          optionBytes: s.optionWords * 4,
          tos: s.tos,
          protocol: s.protocol,
          src: `${s.src[0]}.${s.src[1]}.0.1`,
          dst: `${s.dst[0]}.${s.dst[1]}.0.9`,
        });
        const answer = fragNeededFor(frame, s.mtu);
        if (s.totalLength <= s.mtu) return assert.equal(answer, null);
        assert.ok(answer);
        const d = decodeAnswer(answer);
        assert.ok(d.ipChecksumOk && d.icmpChecksumOk);
        assert.equal(d.tos, s.tos);
        assert.equal(d.ipDst, `${s.src[0]}.${s.src[1]}.0.1`);
        assert.deepEqual(d.quoted, frame.subarray(14, 14 + 20 + s.optionWords * 4 + 8));
      }),
      { numRuns: 500 },
    );
  });
});

// ------------------------------------------------------------------------------------------------
// In the relay: real UDP sockets on 127.0.0.1, a socket standing in for the kernel's VXLAN port.
// ------------------------------------------------------------------------------------------------

const LOOPBACK = '127.0.0.1';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function until(cond: () => boolean, what: string, maxMs = 3000): Promise<void> {
  const end = Date.now() + maxMs;
  for (let i = 0; i < 1_000_000 && !cond(); i++) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

async function udpSink(): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  await new Promise<void>((r) => socket.bind(0, LOOPBACK, r));
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { socket, port: socket.address().port, received };
}

/** VXLAN header, flags I, VNI 0x4c4f4f. */
const VXLAN_HEADER = Buffer.from([0x08, 0, 0, 0, 0x4c, 0x4f, 0x4f, 0]);
const SEGMENT_MTU = 1404;

/** A relay whose largest VXLAN datagram carries a SEGMENT_MTU inner IP packet, and one peer port. */
async function relayWithPeerPort(init: { maxPayloadBytes?: number } = {}) {
  const kernel = await udpSink();
  const peer = randomPeerName();
  const relay = new Relay(
    { clock: new FakeClock(), logger: silentLogger },
    { self: randomPeerName(), dataPort: 0, bindAddress: LOOPBACK, encrypt: false, localVxlanPort: kernel.port, maxPayloadBytes: init.maxPayloadBytes ?? 8 + 14 + SEGMENT_MTU },
  );
  await relay.start();
  cleanups.push(() => relay.stop());
  await relay.setLocalPort(peer, 0);
  const sender = createSocket('udp4');
  await new Promise<void>((r) => sender.bind(0, LOOPBACK, r));
  cleanups.push(() => new Promise<void>((r) => sender.close(() => r())));
  const port = relay.localPortOf(peer);
  assert.ok(port);
  /** The kernel hands the relay a VXLAN datagram for the peer. */
  const fromKernel = (frame: Buffer) => new Promise<void>((r) => sender.send(Buffer.concat([VXLAN_HEADER, frame]), port, LOOPBACK, () => r()));
  return { relay, kernel, fromKernel };
}

describe('relay: over-size frames from the kernel', () => {
  it('answers a DF frame over the segment MTU with fragmentation needed into the local kernel', async () => {
    const { relay, kernel, fromKernel } = await relayWithPeerPort();
    const frame = ipv4Frame({ totalLength: 1500, src: '10.32.0.1', dst: '10.40.0.7' });
    await fromKernel(frame);
    await until(() => kernel.received.length === 1, 'the ICMP frame at the kernel port');
    const datagram = kernel.received[0]!;
    assert.deepEqual(datagram.subarray(0, 8), VXLAN_HEADER, 'same VXLAN header (VNI)');
    const d = decodeAnswer(datagram.subarray(8));
    assert.equal(d.ethDst, SENDER_MAC);
    assert.equal(d.ipDst, '10.32.0.1');
    assert.equal(d.ipSrc, '10.40.0.7');
    assert.equal(d.icmpType, 3);
    assert.equal(d.icmpCode, 4);
    assert.equal(d.nextHopMtu, SEGMENT_MTU);
    assert.ok(d.ipChecksumOk && d.icmpChecksumOk);
    const stats = relay.stats();
    assert.equal(stats.fragNeededSent, 1);
    assert.equal(stats.drops.oversized, 1, 'the frame itself is still dropped');
    assert.equal(stats.toNeighbours, 0);
  });

  it('drops and counts an over-size frame without DF, with no answer', async () => {
    const { relay, kernel, fromKernel } = await relayWithPeerPort();
    await fromKernel(ipv4Frame({ totalLength: 1500, df: false }));
    await until(() => relay.stats().drops.oversized === 1, 'the drop');
    // A DF frame sent afterwards is answered; the socket keeps order, so an answer to the first
    // frame would have arrived before this one.
    await fromKernel(ipv4Frame({ totalLength: 1500, dst: '10.40.0.99' }));
    await until(() => kernel.received.length >= 1, 'the answer to the DF frame');
    assert.equal(kernel.received.length, 1);
    assert.equal(decodeAnswer(kernel.received[0]!.subarray(8)).ipSrc, '10.40.0.99');
    assert.equal(relay.stats().drops.oversized, 2);
    assert.equal(relay.stats().fragNeededSent, 1);
  });

  it('sends no answer when the relay limit leaves no valid next-hop MTU', async () => {
    const { relay, kernel, fromKernel } = await relayWithPeerPort({ maxPayloadBytes: 8 + 14 + 60 });
    await fromKernel(ipv4Frame({ totalLength: 100 }));
    await until(() => relay.stats().drops.oversized === 1, 'the drop');
    assert.equal(relay.stats().fragNeededSent, 0);
    assert.equal(kernel.received.length, 0);
  });
});
