/**
 * Relays on real UDP sockets on 127.0.0.1 (no root). A UDP socket per relay stands in for the
 * kernel's VXLAN port: what the relay injects arrives there. Waiting is event-loop turns bounded
 * in time and count, never sleeps; probe timeouts run on a FakeClock.
 */
import { afterEach, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { FakeClock } from '../../../src/core/clock.js';
import { isLoomError } from '../../../src/core/errors.js';
import { peerNameToBytes, randomPeerName, type PeerName } from '../../../src/core/ids.js';
import { recordingLogger, silentLogger, type Logger } from '../../../src/core/logger.js';
import { keyPair, LOOPBACK, LOOPBACK_U32, recordingEndpointFactory, until } from '../../helpers/relay-harness.js';
import type { DatagramEndpoint } from '../../../src/dataplane/relay/endpoint.js';
import { decodeHeader, encodeRelayPacket, Relay, type DropReason, type RelayInit, type RelayStats } from '../../../src/dataplane/relay/index.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** Collects datagrams: the stand-in for a kernel VXLAN port, or a sniffer. */
async function udpSink(): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  await new Promise<void>((r) => socket.bind(0, LOOPBACK, r));
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { socket, port: socket.address().port, received };
}

/** A VXLAN datagram (8-byte header, VNI 42) around an Ethernet frame carrying `text`. */
function vxlanFrame(text: string): Buffer {
  const vxlan = Buffer.from([0x08, 0, 0, 0, 0, 0, 42, 0]);
  const eth = Buffer.from('020000000002020000000001' + '0800', 'hex');
  return Buffer.concat([vxlan, eth, Buffer.from(text)]);
}

interface Node {
  name: PeerName;
  relay: Relay;
  kernel: { port: number; received: Buffer[] };
  /** Every datagram this relay sent (data, probes, answers), as sent (header, body, tag joined). */
  wire: Buffer[];
  dataSocket: () => DatagramEndpoint;
  address: () => string;
  clock: FakeClock;
}

async function startNode(encrypt: boolean, init: Partial<RelayInit> = {}, logger: Logger = silentLogger): Promise<Node> {
  const name = randomPeerName();
  const kernel = await udpSink();
  const clock = new FakeClock();
  const wire: Buffer[] = [];
  const endpoints: DatagramEndpoint[] = [];
  const endpointFactory = recordingEndpointFactory(wire, endpoints);
  const relay = new Relay({ clock, logger, endpointFactory }, { self: name, dataPort: 0, bindAddress: LOOPBACK, encrypt, localVxlanPort: kernel.port, ...init });
  await relay.start();
  cleanups.push(() => relay.stop());
  const dataPort = relay.dataAddress().port;
  return {
    name,
    relay,
    kernel,
    wire,
    clock,
    dataSocket: () => endpoints.find((e) => e.port === dataPort)!,
    address: () => `${LOOPBACK}:${dataPort}`,
  };
}

function link(x: Node, y: Node, encrypt = true): void {
  const [kx, ky] = keyPair();
  x.relay.setNeighbour(y.name, { address: y.address(), keys: encrypt ? kx : null });
  y.relay.setNeighbour(x.name, { address: x.address(), keys: encrypt ? ky : null });
}

/** A - B - C; A and C are not neighbours and route via B. */
async function line(encrypt: boolean, init: Partial<RelayInit> = {}) {
  const [a, b, c] = [await startNode(encrypt, init), await startNode(encrypt, init), await startNode(encrypt, init)];
  link(a, b);
  link(b, c);
  a.relay.setRoutes((dst) => (dst === b.name || dst === c.name ? b.name : undefined));
  c.relay.setRoutes((dst) => (dst === b.name || dst === a.name ? b.name : undefined));
  for (const [x, peers] of [[a, [b, c]], [b, [a, c]], [c, [a, b]]] as const) {
    for (const p of peers) await x.relay.setLocalPort(p.name, 0);
  }
  return { a, b, c };
}

/** The kernel of `from` hands a VXLAN datagram to the relay's port for `to`. */
async function fromKernel(from: Node, to: Node, frame: Buffer): Promise<void> {
  const port = from.relay.localPortOf(to.name);
  assert.ok(port, 'local port open');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.send(frame, port, LOOPBACK, () => r()));
  s.close();
}

/** The kernel of `from` hands `frames` to the relay's port for `to` back to back, within one event-loop turn. */
async function burstFromKernel(from: Node, to: Node, frames: Buffer[]): Promise<void> {
  const port = from.relay.localPortOf(to.name);
  assert.ok(port, 'local port open');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, LOOPBACK, r));
  let done = 0;
  await new Promise<void>((r) => {
    for (const f of frames) s.send(f, port, LOOPBACK, () => ++done === frames.length && r());
  });
  s.close();
}

/** Data datagrams a relay put on the wire, by packet type (probes and answers left out). */
function dataTypesOnWire(node: Node): string[] {
  return node.wire.map((d) => decodeHeader(d).type).filter((t) => t === 'data' || t === 'dataBatch');
}

/** The last data datagram a relay sent. */
function lastData(node: Node): Buffer {
  const d = node.wire.filter((w) => ['data', 'dataBatch'].includes(decodeHeader(w).type)).at(-1);
  assert.ok(d, 'a data datagram on the wire');
  return d;
}

/** Sends raw bytes to "127.0.0.1:port" from a relay's data endpoint or from a plain socket. */
function sendRaw(from: DatagramEndpoint | Socket, bytes: Uint8Array, to: string): void {
  const port = Number(to.split(':')[1]);
  if ('sendNow' in from) from.sendNow(bytes, LOOPBACK_U32, port);
  else from.send(bytes, port, LOOPBACK);
}

async function expectDrop(node: Node, reason: DropReason, act: () => void | Promise<void>): Promise<RelayStats> {
  const before = node.relay.stats().drops[reason];
  const deliveredBefore = node.relay.stats().toKernel;
  await act();
  await until(() => node.relay.stats().drops[reason] > before, `drop ${reason}`);
  const after = node.relay.stats();
  assert.equal(after.drops[reason], before + 1, reason);
  assert.equal(after.toKernel, deliveredBefore, 'nothing delivered');
  return after;
}

for (const encrypt of [true, false]) {
  describe(`relay on loopback (${encrypt ? 'encrypted' : 'plain'})`, () => {
    it('forwards A -> B -> C and delivers only at C, exactly once', async () => {
      const { a, b, c } = await line(encrypt);
      const frame = vxlanFrame('hello-from-a');
      await fromKernel(a, c, frame);
      await until(() => c.kernel.received.length === 1, 'delivery at C');
      assert.deepEqual(c.kernel.received[0], frame);
      assert.equal(b.relay.stats().forwarded, 1);
      assert.equal(b.kernel.received.length, 0, 'B does not inject a frame that is not for it');
      // and back, C -> A
      await fromKernel(c, a, vxlanFrame('reply-from-c'));
      await until(() => a.kernel.received.length === 1, 'delivery at A');
      assert.equal(a.kernel.received[0]!.subarray(22).toString(), 'reply-from-c');
      // A "broadcast": the kernel writes the same datagram once to each peer port.
      const bcast = vxlanFrame('broadcast');
      await fromKernel(a, b, bcast);
      await fromKernel(a, c, bcast);
      await until(() => b.kernel.received.length === 1 && c.kernel.received.length === 2, 'broadcast copies');
      assert.equal(b.relay.stats().forwarded, 3, 'A->C, C->A and the broadcast copy for C');
      const wireHasMarker = a.wire.some((d) => d.includes('hello-from-a'));
      assert.equal(wireHasMarker, !encrypt, encrypt ? 'no plaintext on the wire' : 'plain mode is plain');
    });

    it('carries a burst as batches: in order, exactly once, forwarded as a batch', async () => {
      const { a, b, c } = await line(encrypt);
      const frames = Array.from({ length: 120 }, (_, i) => vxlanFrame(`burst-${String(i).padStart(3, '0')}-${'x'.repeat(i * 7)}`));
      await burstFromKernel(a, c, frames);
      await until(() => c.kernel.received.length === frames.length, 'the whole burst at C');
      assert.deepEqual(c.kernel.received, frames, 'every frame once, in order');
      const sa = a.relay.stats();
      assert.equal(sa.fromKernel, frames.length);
      const datagrams = dataTypesOnWire(a).length;
      assert.ok(datagrams < frames.length / 2, `120 frames in ${datagrams} datagrams`);
      assert.ok(dataTypesOnWire(a).includes('dataBatch'));
      assert.equal(b.relay.stats().forwarded, frames.length);
      assert.equal(dataTypesOnWire(b).length, dataTypesOnWire(a).length, 'B forwards each batch as one datagram');
      assert.equal(c.relay.stats().toKernel, frames.length);
      // A lone frame still goes as a plain data packet (no batch overhead, same MTU).
      await fromKernel(a, c, vxlanFrame('lone'));
      await until(() => c.kernel.received.length === frames.length + 1, 'the lone frame');
      assert.equal(dataTypesOnWire(a).at(-1), 'data');
    });

    it('with batchBytes 0 sends one datagram per frame; a frame over batchBytes goes alone, after what waits', async () => {
      const { a, c } = await line(encrypt, { batchBytes: 0 });
      const frames = Array.from({ length: 10 }, (_, i) => vxlanFrame(`single-${i}`));
      await burstFromKernel(a, c, frames);
      await until(() => c.kernel.received.length === frames.length, 'the burst at C');
      assert.deepEqual(c.kernel.received, frames);
      assert.equal(dataTypesOnWire(a).length, frames.length);
      assert.deepEqual(new Set(dataTypesOnWire(a)), new Set(['data']));

      const small = await line(encrypt, { batchBytes: 200 });
      const mixed = [vxlanFrame('s1'), vxlanFrame('s2'), vxlanFrame('big-' + 'y'.repeat(300)), vxlanFrame('s3')];
      await burstFromKernel(small.a, small.c, mixed);
      await until(() => small.c.kernel.received.length === mixed.length, 'mixed burst at C');
      assert.deepEqual(small.c.kernel.received, mixed, 'order kept around an unbatchable frame');
    });

    it('drops replayed packets and counts them', async () => {
      const { a, b, c } = await line(encrypt);
      await fromKernel(a, c, vxlanFrame('once'));
      await until(() => c.kernel.received.length === 1, 'delivery');
      const captured = lastData(a);
      await expectDrop(b, 'replayed', () => sendRaw(a.dataSocket(), captured, b.address()));
      assert.equal(c.kernel.received.length, 1);
    });
  });
}

describe('relay drops bad datagrams (encrypted)', () => {
  it('counts corrupted, forged, non-peer, unknown, oversized and policy-mismatch packets', async () => {
    const { a, b, c } = await line(true);
    await fromKernel(a, b, vxlanFrame('good'));
    await until(() => b.kernel.received.length === 1, 'good delivery');
    const good = lastData(a);

    const corrupted = Buffer.from(good);
    corrupted[good.length - 20]! ^= 0x40;
    corrupted.writeUInt32BE(1000, 26); // fresh counter, so the window is not what rejects it
    await expectDrop(b, 'auth-failed', () => sendRaw(a.dataSocket(), corrupted, b.address()));

    // C claims to be A (hop field A) from C's own address: a source that is not that session.
    const forged = Buffer.from(good);
    forged.writeUInt32BE(2000, 26);
    await expectDrop(b, 'forged-source', () => sendRaw(c.dataSocket(), forged, b.address()));

    const stranger = await udpSink();
    const fromStranger = Buffer.from(good);
    fromStranger.writeUInt32BE(3000, 26);
    await expectDrop(b, 'non-peer-address', () => sendRaw(stranger.socket, fromStranger, b.address()));

    const unknownHop = Buffer.from(good);
    unknownHop.set(peerNameToBytes(randomPeerName()), 16);
    await expectDrop(b, 'unknown-peer', () => sendRaw(a.dataSocket(), unknownHop, b.address()));

    const plain = Buffer.from(good.subarray(0, good.length - 16));
    plain[2] = 0;
    plain.writeUInt32BE(4000, 26);
    await expectDrop(b, 'policy-mismatch', () => sendRaw(a.dataSocket(), plain, b.address()));

    await expectDrop(b, 'malformed', () => sendRaw(a.dataSocket(), Buffer.from('GET / HTTP/1.1\r\n'), b.address()));
    await expectDrop(b, 'oversized', () => sendRaw(a.dataSocket(), Buffer.alloc(40_000), b.address()));
    await expectDrop(a, 'oversized', () => fromKernel(a, b, Buffer.alloc(9300)));

    // A frame from the kernel for a peer without a route.
    const orphan = randomPeerName();
    await a.relay.setLocalPort(orphan, 0);
    await expectDrop(a, 'no-route', () => fromKernel(a, { name: orphan } as Node, vxlanFrame('x')));

    // After all that the path still works and nothing bad was delivered.
    await fromKernel(a, b, vxlanFrame('still-good'));
    await until(() => b.kernel.received.length === 2, 'delivery after attacks');
    assert.equal(b.kernel.received[1]!.subarray(22).toString(), 'still-good');
  });

  it('survives random datagrams from a neighbour address: dropped, counted, never thrown', async () => {
    const { a, b } = await line(true);
    const hop = peerNameToBytes(a.name);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 120 }), fc.boolean(), async (bytes, keepHeader) => {
        const d = Buffer.from(bytes);
        if (keepHeader && d.length >= 30) {
          d[0] = 1;
          d[1] = 1;
          d[2] = 1;
          d.set(hop, 16);
          d[22] = 0;
        }
        sendRaw(a.dataSocket(), d, b.address());
        sent++;
      }),
      { numRuns: 300 },
    );
    // Every random datagram is dropped (the neighbours' own probes and answers also arrive, valid).
    const dropped = (): number => Object.values(b.relay.stats().drops).reduce((x, y) => x + y, 0);
    await until(() => dropped() === sent, 'all random datagrams dropped');
    assert.ok(b.relay.stats().fromNeighbours >= sent);
    assert.equal(b.relay.stats().toKernel, 0);
  });
});

describe('relay drops bad batches (plain)', () => {
  it('counts a batch whose records do not add up as malformed, and delivers none of it', async () => {
    const { a, b } = await line(false);
    const batch = (counter: number, body: Buffer): Buffer =>
      encodeRelayPacket({ type: 'dataBatch', sealed: false, ttl: 16, source: a.name, destination: b.name, hop: a.name, counter }, body, null);
    const record = (frame: Buffer): Buffer => Buffer.concat([Buffer.from([frame.length >> 8, frame.length & 0xff]), frame]);
    const ok = record(vxlanFrame('fine'));
    await expectDrop(b, 'malformed', () => sendRaw(a.dataSocket(), batch(100, Buffer.concat([ok, Buffer.from([0, 200]), Buffer.alloc(10)])), b.address()));
    await expectDrop(b, 'malformed', () => sendRaw(a.dataSocket(), batch(101, Buffer.concat([ok, Buffer.from([0, 5]), Buffer.alloc(5)])), b.address()));
    await expectDrop(b, 'malformed', () => sendRaw(a.dataSocket(), batch(102, Buffer.concat([ok, Buffer.from([0])])), b.address()));
    // A well-formed one from the same hop is delivered frame by frame.
    sendRaw(a.dataSocket(), batch(103, Buffer.concat([ok, ok])), b.address());
    await until(() => b.kernel.received.length === 2, 'valid batch');
    assert.deepEqual(b.kernel.received, [vxlanFrame('fine'), vxlanFrame('fine')]);
  });
});

describe('relay probes', () => {
  it('reports reachability with an RTT, and a timeout on the fake clock', async () => {
    const [a, b] = [await startNode(true), await startNode(true)];
    link(a, b);
    const reports: Array<[PeerName, boolean, number | null]> = [];
    a.relay.onReachability((p, ok, rtt) => reports.push([p, ok, rtt]));
    a.relay.probe(b.name);
    await until(() => reports.length === 1, 'probe answer');
    assert.deepEqual(reports[0], [b.name, true, 0]);
    assert.ok(b.relay.stats().probesAnswered >= 1, 'answered (path MTU probes are answered too)');

    await b.relay.stop();
    a.relay.probe(b.name);
    a.clock.advance(999);
    assert.equal(reports.length, 1);
    a.clock.advance(1);
    assert.deepEqual(reports[1], [b.name, false, null]);
    assert.throws(() => a.relay.probe(randomPeerName()), (e) => isLoomError(e, 'ERR_NOT_FOUND'));
  });

  it('learns a NAT-mapped address from an authenticated probe, not from a forged one', async () => {
    const [a, b] = [await startNode(true), await startNode(true)];
    const [ka, kb] = keyPair();
    // B only knows a stale address for A (as if A sat behind a NAT that picked another port).
    const stale = await udpSink();
    b.relay.setNeighbour(a.name, { address: `${LOOPBACK}:${stale.port}`, keys: kb });
    await b.relay.setLocalPort(a.name, 0);

    // A forged probe (wrong key) from another address changes nothing.
    const mallory = await udpSink();
    const probeFromA = (() => {
      const h = Buffer.alloc(30 + 8 + 16);
      h[0] = 1;
      h[1] = 2;
      h[2] = 1;
      h[3] = 1;
      h.set(peerNameToBytes(a.name), 4);
      h.set(peerNameToBytes(b.name), 10);
      h.set(peerNameToBytes(a.name), 16);
      h.writeUInt32BE(77, 26);
      return h;
    })();
    await expectDrop(b, 'auth-failed', () => sendRaw(mallory.socket, probeFromA, b.address()));
    assert.equal(b.relay.stats().neighbours[0]!.address, `${LOOPBACK}:${stale.port}`);

    // A learns of B now: its first probes (path MTU discovery) teach B where A really is.
    a.relay.setNeighbour(b.name, { address: b.address(), keys: ka });
    await a.relay.setLocalPort(b.name, 0);
    const reports: boolean[] = [];
    a.relay.onReachability((_p, ok) => reports.push(ok));
    a.relay.probe(b.name);
    await until(() => reports.length === 1, 'probe answer through the "NAT"');
    assert.deepEqual(reports, [true]);
    assert.equal(b.relay.stats().addressesLearned, 1);
    assert.equal(b.relay.stats().neighbours[0]!.address, a.address());

    // Data from B now reaches A at the learned address; the stale one got no data (only B's
    // path MTU probes from before it learned).
    await fromKernel(b, a, vxlanFrame('via-learned-address'));
    await until(() => a.kernel.received.length === 1, 'delivery at A');
    assert.deepEqual(stale.received.map((d) => decodeHeader(d).type).filter((t) => t !== 'probe'), []);
    // The controller re-sending the same config keeps the learned address.
    b.relay.setNeighbour(a.name, { address: `${LOOPBACK}:${stale.port}`, keys: kb });
    assert.equal(b.relay.stats().neighbours[0]!.address, a.address());
  });

  it('validates configuration with stable codes', async () => {
    const a = await startNode(true);
    const other = randomPeerName();
    assert.throws(() => a.relay.setNeighbour(other, { address: '127.0.0.1:1', keys: null }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => a.relay.setNeighbour(other, { address: 'nope', keys: keyPair()[0] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => a.relay.setNeighbour(a.name, { address: '127.0.0.1:1', keys: keyPair()[0] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => a.relay.setNeighbour('zz' as PeerName, { address: '127.0.0.1:1', keys: keyPair()[0] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    await assert.rejects(a.relay.setLocalPort(other, 70000), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    for (const batchBytes of [-1, 1.5, 40_000]) {
      assert.throws(() => new Relay({ clock: a.clock, logger: silentLogger }, { self: randomPeerName(), encrypt: false, batchBytes }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    }
    const taken = await udpSink();
    await assert.rejects(a.relay.setLocalPort(other, taken.port), (e) => isLoomError(e, 'ERR_CONFLICT'));
  });
});

test('a burst of relayed traffic logs nothing at info or above (no logging per packet)', async () => {
  const log = recordingLogger();
  const [a, b] = [await startNode(true, {}, log), await startNode(true, {}, log)];
  link(a, b);
  a.relay.setRoutes((dst) => (dst === b.name ? b.name : undefined));
  b.relay.setRoutes((dst) => (dst === a.name ? a.name : undefined));
  await a.relay.setLocalPort(b.name, 0);
  await b.relay.setLocalPort(a.name, 0);
  const before = log.records.length;
  for (let burst = 0; burst < 4; burst++) await burstFromKernel(a, b, Array.from({ length: 50 }, (_, i) => vxlanFrame(`frame-${burst}-${i}`)));
  // Loopback may drop a few datagrams of a burst under load; most must arrive.
  await until(() => b.kernel.received.length >= 150, 'the burst delivered', 10_000);
  // State changes may happen meanwhile (the first probe verifies each path MTU): a line each, at most.
  const loud = log.records.slice(before).filter((r) => r.level !== 'debug' && r.msg !== 'path MTU to neighbour changed');
  assert.deepEqual(loud, [], `${b.kernel.received.length} frames delivered`);
  assert.ok(log.records.slice(before).filter((r) => r.level !== 'debug').length <= 2, 'at most one path MTU line per neighbour');
});
